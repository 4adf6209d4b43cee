"""One construct per file; the stack in stacks/ami_guard_stack.py wires them together."""
