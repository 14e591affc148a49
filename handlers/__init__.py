"""ocrflow's service side: HTTP ingress, arq worker, storage and the processes around them."""
