"""How an image is made: context, stages, one module per instruction, commit; and the CLI."""
