"""Jobs over many questions or documents, composed from the layers below: preparing and indexing
documents (`documents`: build, update, add_documents), training an adapter (`train`), the data-size sweep
(`sweep`: adapters on growing shares of the data, each evaluated), training the router from evaluation
records (`router`).
"""
