"""One of two JAX processes (CPU, gloo) saving arrays sharded across both into one Orbax
checkpoint: OCDBT with `ocdbt.process_0/` and `ocdbt.process_1/`, merged by process 0's manifest.
Run by make_orbax.py as `python two_processes.py PROCESS_ID OUT_DIR PORT`.
"""
import sys

pid = int(sys.argv[1])
import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(coordinator_address=f"localhost:{sys.argv[3]}", num_processes=2, process_id=pid)
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

mesh = Mesh(np.array(jax.devices()), ("x",))
full = np.arange(8 * 6, dtype=np.float32).reshape(8, 6) / 10
col = np.arange(4 * 10, dtype=np.float32).reshape(4, 10) - 7
rep = np.array([1.5, 2.5, 3.5], np.float32)
tree = {
    "w": jax.make_array_from_callback((8, 6), NamedSharding(mesh, P("x", None)), lambda i: full[i]),
    "v": jax.make_array_from_callback((4, 10), NamedSharding(mesh, P(None, "x")), lambda i: col[i]),
    "r": jax.make_array_from_callback((3,), NamedSharding(mesh, P()), lambda i: rep[i]),
}
ck = ocp.StandardCheckpointer()
ck.save(sys.argv[2], tree)
ck.wait_until_finished()
