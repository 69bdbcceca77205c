"""Azure Functions blueprints, one module per function family. Each function stays thin:
decode the input, call `shared/`, encode the output."""
