"""Writing the directory to the target database: staging rows, filling withheld values, merging."""
