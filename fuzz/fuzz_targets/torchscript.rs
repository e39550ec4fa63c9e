//! Fuzzes the TorchScript code reader: the parser of the printed Python subset and the symbolic
//! evaluator that makes the op graph (inlining, folding, branches, loops, pruning, budgets). The
//! input is source files separated by NUL bytes, each starting with its module's name on a line;
//! the module tree comes from the classes' typed attributes. (Through a real archive the code is
//! deflated with a CRC, so the `torch` target rarely reaches it.) Any input must give a graph,
//! never a panic, a hang or memory sized by the input's numbers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = modelmap::load::fuzz_torchscript_code(data);
});
