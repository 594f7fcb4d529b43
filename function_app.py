"""Azure Functions (Python v2) entry points. Thin: triggers and bindings, one call into `guardrail`.

Only azure.functions is imported here; the guardrail loads on the first invocation, so the
host's cold start pays as little as possible.
"""

import logging
import os

import azure.functions as func

# pydantic (the policy's models, built on the first invocation) looks for plugins in every installed
# distribution's entry points when it builds its first model: ~30 ms of a cold start, for plugins
# the guardrail does not use. An app setting PYDANTIC_DISABLE_PLUGINS (even empty) takes precedence.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

app = func.FunctionApp()

SWEEP_SCHEDULE = os.environ.get("GUARDRAIL_SWEEP_SCHEDULE", "").strip() or "0 0 */6 * * *"


@app.function_name("on_resource_write")
@app.event_grid_trigger(arg_name="event")
def on_resource_write(event: func.EventGridEvent) -> None:
    """Microsoft.Resources.ResourceWriteSuccess from a subscription system topic (either schema)."""
    from guardrail.functions import handle_function_event

    handle_function_event(event)


@app.function_name("on_resource_notification")
@app.event_grid_trigger(arg_name="event")
def on_resource_notification(event: func.EventGridEvent) -> None:
    """Azure Resource Notifications (Microsoft.ResourceNotifications.Resources.CreatedOrUpdated)."""
    from guardrail.functions import handle_function_event

    handle_function_event(event)


# guardrail.fanout.SWEEP_QUEUE / POISON_QUEUE (literals here: this module imports only azure.functions).
SWEEP_QUEUE = "guardrail-sweep"
POISON_QUEUE = "guardrail-sweep-poison"


@app.function_name("reconcile_sweep")
@app.timer_trigger(arg_name="timer", schedule=SWEEP_SCHEDULE, run_on_startup=False, use_monitor=True)
def reconcile_sweep(timer: func.TimerRequest) -> None:
    """The reconcile sweep, fanned out: one message per governed subscription on the sweep queue."""
    from guardrail.functions import run_sweep

    if timer.past_due:
        logging.getLogger("guardrail").warning("reconcile sweep is running late")
    run_sweep()


@app.function_name("sweep_slice")
@app.queue_trigger(arg_name="message", queue_name=SWEEP_QUEUE, connection="AzureWebJobsStorage")
def sweep_slice(message: func.QueueMessage) -> None:
    """One page of one subscription's accounts, through the same path (the host scales this out)."""
    from guardrail.functions import run_sweep_slice

    run_sweep_slice(message)


@app.function_name("sweep_poison")
@app.queue_trigger(arg_name="message", queue_name=POISON_QUEUE, connection="AzureWebJobsStorage")
def sweep_poison(message: func.QueueMessage) -> None:
    """A slice that failed host.json's maxDequeueCount times: reported, not lost."""
    from guardrail.functions import report_sweep_poison

    report_sweep_poison(message)


@app.function_name("health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Version and configuration problems (never secrets)."""
    from guardrail.functions import health_report

    status, body = health_report()
    return func.HttpResponse(body, status_code=status, mimetype="application/json")
