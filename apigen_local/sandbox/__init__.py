"""Host side of the execution sandbox: the Docker engine client, the image builder and the executor."""
