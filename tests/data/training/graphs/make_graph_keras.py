"""Writes a Keras model's TensorBoard logs with Keras's own callback (`TensorBoard(write_graph=True)`:
Keras 3 logs the model's JSON config as the `keras` summary, plugin `graph_keras_model`, no longer
a GraphDef), and facts_keras.json with the layers of the config TensorFlow's reader reads back.

    python make_graph_keras.py       # TensorFlow 2.21 (Keras 3) wrote the files
"""

import glob
import json
import os
import shutil

import numpy as np
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, "keras_mlp")
shutil.rmtree(RUN, ignore_errors=True)

tf.keras.utils.set_random_seed(0)
inputs = tf.keras.Input((8,), name="features")
x = tf.keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
x = tf.keras.layers.Dropout(0.1, name="drop")(x)
outputs = tf.keras.layers.Dense(1, name="score")(x)
model = tf.keras.Model(inputs, outputs, name="scorer")
model.compile("adam", "mse")
model.fit(
    np.zeros((32, 8)),
    np.zeros((32, 1)),
    epochs=2,
    verbose=0,
    callbacks=[tf.keras.callbacks.TensorBoard(RUN, write_graph=True)],
)
# Only the training run's file holds the model config.
shutil.rmtree(os.path.join(RUN, "validation"), ignore_errors=True)

(path,) = glob.glob(os.path.join(RUN, "train", "events.out.tfevents.*"))
config = None
for event in tf.compat.v1.train.summary_iterator(path):
    for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name == "graph_keras_model":
            config = json.loads(tf.make_ndarray(value.tensor).reshape(-1)[0])
facts = {
    "run": "keras_mlp/train",
    "name": config["config"]["name"],
    "layers": [{"name": l["config"]["name"], "class": l["class_name"]} for l in config["config"]["layers"]],
}
with open(os.path.join(HERE, "facts_keras.json"), "w") as f:
    json.dump(facts, f, indent=1)
    f.write("\n")
