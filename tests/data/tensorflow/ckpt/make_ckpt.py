"""Writes the TensorFlow checkpoints (tensor bundles opened on their own, not inside a
SavedModel) that tests/tensorflow_ckpt.rs reads, and facts.json: what TensorFlow's own reader
(`tf.train.load_checkpoint`) gives for every key.

- `tf1/model.ckpt-3.*`: name-based, as TF1's `tf.compat.v1.train.Saver` writes it (Google's
  original BERT, ALBERT and T5 releases are such checkpoints): a BERT-shaped encoder's variables
  named by scope (`bert/encoder/layer_0/attention/self/query/kernel`), `global_step`, and Adam's
  slots (`…/kernel/Adam`, `…/kernel/Adam_1`); with its `.meta` graph and `checkpoint` file.
- `tf2/ckpt-1.*`: object-based, as `tf.train.Checkpoint` writes it (and Keras 2's
  `model.save_weights` in the TensorFlow format): a small Keras 2 (`tf_keras`) model and its Adam
  state after one step, keys such as `model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE`
  and the optimizer's slots under `…/.OPTIMIZER_SLOT/optimizer/m/…`.

Run from this folder with TensorFlow 2 and tf_keras:  python3 make_ckpt.py
The committed files were written by TensorFlow 2.21 and tf_keras 2.21 on 2026-11-29.
"""
import json
import os
import shutil

import numpy as np
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))


def dense(x, units, name, init):
    """A dense layer as `tf.compat.v1.layers.dense` names its variables (gone with Keras 3)."""
    with tf.compat.v1.variable_scope(name):
        w = tf.compat.v1.get_variable("kernel", [x.shape[-1], units], initializer=init)
        b = tf.compat.v1.get_variable("bias", [units], initializer=tf.compat.v1.zeros_initializer())
    return tf.matmul(x, w) + b


def tf1(out):
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.set_random_seed(5)
        x = tf.compat.v1.placeholder(tf.float32, [None, 8], name="input")
        init = tf.compat.v1.truncated_normal_initializer(stddev=0.02, seed=5)
        with tf.compat.v1.variable_scope("bert"):
            emb = tf.compat.v1.get_variable("embeddings/word_embeddings", [30, 8], initializer=init)
            h = x + tf.reduce_mean(emb)
            for i in range(2):
                with tf.compat.v1.variable_scope(f"encoder/layer_{i}"):
                    with tf.compat.v1.variable_scope("attention/self"):
                        q = dense(h, 8, "query", init)
                        k = dense(h, 8, "key", init)
                    with tf.compat.v1.variable_scope("attention/output"):
                        h = dense(q * k, 8, "dense", init)
                    with tf.compat.v1.variable_scope("intermediate"):
                        h = dense(h, 16, "dense", init)
                    with tf.compat.v1.variable_scope("output"):
                        h = dense(h, 8, "dense", init)
        loss = tf.reduce_mean(tf.square(h))
        step = tf.compat.v1.train.get_or_create_global_step()
        train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, global_step=step)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as s:
            s.run(tf.compat.v1.global_variables_initializer())
            feed = {x: np.linspace(-1, 1, 32, dtype=np.float32).reshape(4, 8)}
            for _ in range(3):
                s.run(train, feed)
            saver.save(s, os.path.join(out, "model.ckpt"), global_step=step)


def tf2(out):
    # Keras 2 (tf_keras, what TF Model Garden and TF 2.15-era code use): its layers and optimizer
    # are trackable objects, so the checkpoint keys follow the object graph.
    import tf_keras

    tf_keras.utils.set_random_seed(9)
    model = tf_keras.Sequential(
        [tf_keras.Input((6,)), tf_keras.layers.Dense(5, activation="relu"), tf_keras.layers.Dense(3)]
    )
    opt = tf_keras.optimizers.Adam(1e-3)
    x = tf.constant(np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x)))
    opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
    tf.train.Checkpoint(model=model, optimizer=opt).save(os.path.join(out, "ckpt"))


def facts_of(prefix):
    reader = tf.train.load_checkpoint(prefix)
    dtypes = reader.get_variable_to_dtype_map()
    out = {}
    for key, shape in sorted(reader.get_variable_to_shape_map().items()):
        if dtypes[key] == tf.string:
            continue
        v = np.asarray(reader.get_tensor(key)).astype(np.float64).reshape(-1)
        out[key] = {
            "dtype": dtypes[key].name,
            "shape": list(shape),
            "mean": float(v.mean()) if v.size else 0.0,
            "first": v[:4].tolist(),
        }
    return out


def main():
    facts = {}
    for name, make in [("tf1", tf1), ("tf2", tf2)]:
        out = os.path.join(HERE, name)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        make(out)
        prefix = tf.train.latest_checkpoint(out)
        facts[name] = {
            "prefix": os.path.basename(prefix),
            "files": sorted(os.listdir(out)),
            "tensors": facts_of(prefix),
        }
    with open(os.path.join(HERE, "facts.json"), "w") as f:
        json.dump(facts, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
