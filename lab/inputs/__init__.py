"""What a study reads: corpora, evaluation tasks and the preflight checks of files before any compute."""
