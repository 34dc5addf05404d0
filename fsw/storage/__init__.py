"""On-board storage: packet stores (PUS-C service 15), the file store with its data
products, and file delivery by CFDP (docs/components/stores.md, docs/components/files.md)."""
