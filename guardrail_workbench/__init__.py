"""Local stand-ins for Azure (emulator, receivers, Azurite launcher) and their TLS set-up."""
