# Shared helpers of the azd hooks (POSIX sh; sourced, not run). azd runs hooks from the project root
# with the environment's values exported; `azd env get-value` reads the current .env.

env_value() {
  azd env get-value "$1" 2>/dev/null || true
}

# az is installed and signed in (the hooks that read Azure need it; azd's own sign-in is separate).
az_ready() {
  command -v az >/dev/null 2>&1 && az account show --only-show-errors >/dev/null 2>&1
}

say() {
  printf 'guardrail hook: %s\n' "$*" >&2
}
