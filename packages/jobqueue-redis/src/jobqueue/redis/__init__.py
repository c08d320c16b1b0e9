"""Work in progress: see the open issues."""
