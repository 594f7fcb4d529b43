"""AI Services Network Guardrail: keeps Azure AI services accounts inside the network policy."""

__version__ = "0.1.0"
