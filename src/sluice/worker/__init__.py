"""Worker entry points: the queue consumer loop and the stage handlers it dispatches to."""
