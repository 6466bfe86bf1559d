"""`python -m qheart` (and `torchrun ... -m qheart pretrain ...` for several processes)."""

from qheart.cli import main

if __name__ == "__main__":
    main()
