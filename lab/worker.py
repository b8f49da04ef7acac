"""Entry point of a stage worker process: ``python -m lab.worker`` runs lab.run.worker's main."""

from lab.run.worker import main

if __name__ == "__main__":
    raise SystemExit(main())
