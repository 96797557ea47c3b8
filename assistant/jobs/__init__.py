"""Jobs over many questions or documents, composed from the layers below: training the router from
evaluation records (`router`).
"""
