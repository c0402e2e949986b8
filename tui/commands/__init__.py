"""One module per CLI command group; each defines `register(subparsers)`.

A module's `register` adds its sub-parser(s) and sets `func` to a callable taking the parsed
arguments and returning an exit code. Modules are discovered, so stages add commands without
editing a shared file.
"""
