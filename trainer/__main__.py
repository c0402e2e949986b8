"""`python -m trainer --config FILE ...` (also under `accelerate launch -m trainer`)."""

from trainer.cli import main

raise SystemExit(main())
