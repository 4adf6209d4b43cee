"""One construct per file; the stack in ami_guard_cdk/ami_guard_stack.py wires them together."""
