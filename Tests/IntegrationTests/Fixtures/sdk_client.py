#!/usr/bin/env python3
"""Drives msb server with the published microsandbox Python SDK (0.1.x), unmodified.

usage: sdk_client.py SANDBOX_NAME   (MSB_SERVER_URL and MSB_API_KEY come from the environment)
Prints one JSON object with what the SDK returned.
"""
import asyncio, json, sys
from microsandbox import PythonSandbox

async def main(name):
    report = {}
    async with PythonSandbox.create(name=name) as sb:
        first = await sb.run("x = 41\nprint('hi')")
        report["first"] = await first.output()
        second = await sb.run("print(x + 1)")
        report["second"] = await second.output()
        raised = await sb.run("1/0")
        report["exception_has_error"] = raised.has_error()
        command = await sb.command.run("sh", ["-c", "echo a; echo b >&2; exit 4"])
        report["command_output"] = await command.output()
        report["command_error"] = await command.error()
        report["command_exit_code"] = command.exit_code
        report["running"] = await sb.metrics.is_running()
        report["memory"] = await sb.metrics.memory()
        report["cpu"] = await sb.metrics.cpu()
    print(json.dumps(report))

asyncio.run(main(sys.argv[1]))
