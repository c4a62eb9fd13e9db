"""The job API: aiohttp routes inside ComfyUI's server, the job service and its store.

Everything here except ``comfy_host`` runs without ComfyUI: the service talks to a small
host interface (``host.Host``) that ``comfy_host.PromptServerHost`` implements over
ComfyUI's PromptServer and tier-1 tests implement with a fake.
"""
