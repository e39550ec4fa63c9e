"""Writes Model Explorer node data files that choose their own colours, and the colour Model
Explorer's own code gives each result, for `tests/node_data.rs`.

    python make_node_colours.py        # needs ai-edge-model-explorer (pip) and node

The values are the PP-OCR classifier's kernel times of `ppocr_latency.json` (make_node_data.py).
The files are written by Model Explorer's `node_data_builder`:

- `ppocr_gradient.json`: a GraphNodeData with a gradient (stops given out of order, one colour by
  name) and one result with its own `bgColor`;
- `ppocr_thresholds.json`: a ModelNodeData (one graph) with three thresholds; the slowest nodes
  lie above the last one, so Model Explorer leaves them uncoloured.

`colours.json` holds, per file and key, the background Model Explorer draws: computed by running
the web app's own methods (`getBgColor`, `getColorFromGradient`, `getRgbFromColor` and the colour
name table, cut out of the `main-*.js` bundle the pip package ships) in node, with the steps of its
`processNodeDataProviderDataForGraph` (gradient colours parsed and sorted by stop, the smallest and
largest value of the results, a result's own `bgColor` first). Each colour is `#rrggbb` as
`getRgbFromColor` reads it, or `transparent`.
"""
import glob
import importlib.metadata
import json
import os
import re
import subprocess

import model_explorer
from model_explorer import node_data_builder as ndb

here = os.path.dirname(os.path.abspath(__file__))
latency = json.load(open(os.path.join(here, "ppocr_latency.json")))["results"]
values = {k: r["value"] for k, r in latency.items()}
ordered = sorted(values, key=values.get)
slowest = ordered[-1]


def quantile(q):
    return values[ordered[int(q * (len(ordered) - 1))]]


# A gradient, its stops out of order (Model Explorer sorts them), one colour by name, and one
# result that sets its own background.
results = {k: ndb.NodeDataResult(value=v) for k, v in values.items()}
own = ordered[len(ordered) // 2]
results[own] = ndb.NodeDataResult(value=values[own], bgColor="#8a2be2")
gradient = ndb.GraphNodeData(
    results=results,
    gradient=[
        ndb.GradientItem(stop=1, bgColor="#d32f2f"),
        ndb.GradientItem(stop=0, bgColor="#e3f2fd"),
        ndb.GradientItem(stop=0.25, bgColor="gold"),
    ],
)
gradient.save_to_file(os.path.join(here, "ppocr_gradient.json"), indent=1)

# Thresholds (upper bounds, first match in file order); above the last: no colour.
thresholds = ndb.ModelNodeData(
    graphsData={
        "main_graph": ndb.GraphNodeData(
            results={k: ndb.NodeDataResult(value=v) for k, v in values.items()},
            thresholds=[
                ndb.ThresholdItem(value=quantile(0.25), bgColor="#c8e6c9"),
                ndb.ThresholdItem(value=quantile(0.75), bgColor="orange"),
                ndb.ThresholdItem(value=quantile(0.95), bgColor="#e53935"),
            ],
        )
    }
)
thresholds.save_to_file(os.path.join(here, "ppocr_thresholds.json"), indent=1)

# Model Explorer's own colouring, cut out of its web app.
(bundle,) = glob.glob(os.path.join(os.path.dirname(model_explorer.__file__), "web_app", "main-*.js"))
js = open(bundle, encoding="utf-8").read()


def method(name):
    m = re.search(name + r"\([\w,]*\)\{", js)
    assert m, name
    depth, i = 0, m.end() - 1
    while True:
        depth += {"{": 1, "}": -1}.get(js[i], 0)
        i += 1
        if depth == 0:
            return js[m.start() : i]


methods = [method(n) for n in ("getBgColor", "getColorFromGradient", "getRgbFromColor", "numToHex", "hexStrToInt")]
table = re.search(r"r=(\w+)\[e\]", methods[2]).group(1)
names = re.search(re.escape(table) + r"=\{[^}]*\}", js).group(0)
script = f"""
const {names};
const me = {{ {",".join(methods)} }};
const files = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = {{}};
for (const [file, graph] of Object.entries(files)) {{
  // processNodeDataProviderDataForGraph's colouring steps.
  const stops = [];
  for (const c of graph.gradient || []) {{
    const d = {{ stop: c.stop }};
    if (c.bgColor != null) d.bgColor = me.getRgbFromColor(c.bgColor, "#ffffff");
    stops.push(d);
  }}
  stops.sort((a, b) => a.stop - b.stop);
  let lo = Infinity, hi = -Infinity;
  if (stops.length > 0)
    for (const {{ value }} of Object.values(graph.results))
      if (typeof value == "number") {{ lo = Math.min(lo, value); hi = Math.max(hi, value); }}
  out[file] = {{}};
  for (const [key, r] of Object.entries(graph.results)) {{
    let bg = r.bgColor;
    if (bg == null) bg = me.getBgColor(r.value, graph.thresholds || [], stops, lo, hi);
    if (bg !== "transparent") {{
      const c = me.getRgbFromColor(bg, "#ffffff");
      bg = "#" + [c.r, c.g, c.b].map((x) => me.numToHex(x)).join("");
    }}
    out[file][key] = bg;
  }}
}}
console.log(JSON.stringify(out));
"""
files = {
    "ppocr_gradient.json": json.load(open(os.path.join(here, "ppocr_gradient.json"))),
    "ppocr_thresholds.json": json.load(open(os.path.join(here, "ppocr_thresholds.json")))["main_graph"],
}
run = subprocess.run(["node", "-e", script], input=json.dumps(files), capture_output=True, text=True, check=True)
colours = json.loads(run.stdout)
with open(os.path.join(here, "colours.json"), "w") as f:
    json.dump(
        {
            "model_explorer": os.path.basename(bundle)
            + " of ai-edge-model-explorer "
            + importlib.metadata.version("ai-edge-model-explorer"),
            "own_colour_key": own,
            "slowest": slowest,
            "colours": colours,
        },
        f,
        indent=1,
        sort_keys=True,
    )
for file, c in colours.items():
    print(file, len(c), "results;", len(set(c.values())), "colours;", sum(v == "transparent" for v in c.values()), "transparent")
