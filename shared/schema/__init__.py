"""Schema management, Terraform-style: the schema the manifests want, a snapshot of what the target
has, the plan between them, its file form and rendering, and applying it under an exclusive lease."""
