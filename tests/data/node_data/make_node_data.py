"""Writes Model Explorer node data for the corpus's PP-OCR direction classifier from a real
onnxruntime profile: each node's kernel time, keyed by the node's name, as a profiler-backed node
data provider would write it (`{"results": {NODE: {"value": microseconds}}}`).

    python make_node_data.py ../../../../shared/corpus/real/ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx

onnxruntime's profile names each kernel event `<node name>_kernel_time`; ONNX nodes without a
name get onnxruntime's own, which the file does not hold, so the profile's events for them are left
out (as Model Explorer would not match them either). The profile runs 20 inferences; the value is a
node's mean kernel time.
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort

here = os.path.dirname(os.path.abspath(__file__))
model_path = sys.argv[1]
names = {n.name for n in onnx.load(model_path).graph.node if n.name}
opts = ort.SessionOptions()
opts.enable_profiling = True
opts.profile_file_prefix = os.path.join(here, "profile")
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
opts.intra_op_num_threads = 1
sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
inp = sess.get_inputs()[0]
shape = [d if isinstance(d, int) else 1 for d in inp.shape]
shape[-2:] = [48, 192]
x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
for _ in range(20):
    sess.run(None, {inp.name: x})
profile = sess.end_profiling()
events = json.load(open(profile))
os.remove(profile)
times = {}
for e in events:
    if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
        node = e["name"][: -len("_kernel_time")]
        if node in names:
            times.setdefault(node, []).append(e["dur"])
results = {k: {"value": float(np.mean(v))} for k, v in sorted(times.items())}
with open(os.path.join(here, "ppocr_latency.json"), "w") as f:
    json.dump({"results": results}, f, indent=1)
top = max(results, key=lambda k: results[k]["value"])
with open(os.path.join(here, "facts.json"), "w") as f:
    json.dump({"nodes": len(results), "slowest": top, "slowest_us": results[top]["value"]}, f, indent=1)
print(len(results), "nodes; slowest", top, results[top])
