"""A support-triage agent written only against the official ``openai`` client.

It does not import ``fleet``: the fleet starts it with ``OPENAI_BASE_URL`` and
``OPENAI_API_KEY`` pointing at its gateway (a per-run token, not a real key),
so its calls are governed like any SDK agent's: the model name it asks for is
mapped by ``[llm] aliases`` (the demo maps every name to the offline
``fleet/demo``), budgets and rate limits hold, and its spend shows in the
console. Issuing a refund is a tool in ``[tools] approve``: the gateway holds
that tool call until a human answers in the console (key ``a``) or with
``fleet approve ID``; a denial comes back as the assistant's text, and the
loop goes on.
"""

from __future__ import annotations

import json
import random
import time

import openai
from openai import OpenAI

CUSTOMERS = ("Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries")
TOOLS = {
    "lookup_order": {
        "description": "Find a customer's latest order and its amount.",
        "parameters": {
            "type": "object",
            "properties": {"customer": {"type": "string"}},
            "required": ["customer"],
        },
    },
    "issue_refund": {
        "description": "Refund an order to the customer's card.",
        "parameters": {
            "type": "object",
            "properties": {"customer": {"type": "string"}, "amount_usd": {"type": "number"}},
            "required": ["customer", "amount_usd"],
        },
    },
}


def tools(*names: str) -> list[dict]:
    return [{"type": "function", "function": {"name": n, **TOOLS[n]}} for n in names]


def run_tool(name: str, args: dict, ticket: dict) -> str:
    if name == "lookup_order":
        return json.dumps({"customer": ticket["customer"], "order": ticket["order"], "amount_usd": ticket["amount"]})
    if name == "issue_refund":
        print(f"REFUND ISSUED to {ticket['customer']}: ${ticket['amount']:.2f}", flush=True)
        return json.dumps({"refunded": True, "amount_usd": ticket["amount"]})
    return json.dumps({"error": f"unknown tool {name}"})


def step(client: OpenAI, messages: list, offered: list[dict], ticket: dict) -> str:
    """One model turn; runs the tool calls it returns and asks again until it answers in words."""
    while True:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=offered)
        message = reply.choices[0].message
        used = reply.usage
        print(f"  model {reply.model}: {used.prompt_tokens}+{used.completion_tokens} tokens", flush=True)
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            return message.content or ""
        for call in message.tool_calls:
            args = json.loads(call.function.arguments or "{}")
            print(f"  tool {call.function.name}({args})", flush=True)
            result = run_tool(call.function.name, args, ticket)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        offered = []  # the tool ran: now the model sums up


def main() -> None:
    client = OpenAI()
    rng = random.Random()
    for n in range(1, 10**9):
        ticket = {
            "id": n,
            "customer": rng.choice(CUSTOMERS),
            "order": f"SO-{rng.randrange(10_000, 99_999)}",
            "amount": round(rng.uniform(20, 900), 2),
        }
        print(f"ticket #{n}: {ticket['customer']} asks for a refund of order {ticket['order']}", flush=True)
        messages = [
            {"role": "system", "content": "You triage support tickets. Use the tools; refunds need a reason."},
            {"role": "user", "content": f"Ticket #{n} from {ticket['customer']}: please refund my last order."},
        ]
        try:
            found = step(client, messages, tools("lookup_order"), ticket)
            print(f"  triage: {found[:100]}", flush=True)
            messages.append({"role": "user", "content": "Refund it if it is justified."})
            outcome = step(client, messages, tools("issue_refund"), ticket)
            print(f"  outcome: {outcome[:160]}", flush=True)
        except openai.RateLimitError as exc:  # budget spent or rate window full: wait, do not hammer
            print(f"  gateway refused: {exc.message[:160]}", flush=True)
            time.sleep(30)
        except openai.APIError as exc:
            print(f"  model call failed: {exc}", flush=True)
        time.sleep(20)


if __name__ == "__main__":
    main()
