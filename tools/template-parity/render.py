# Optional third stack of .ci/steps/template-parity.sh: Python's jinja2 with the settings transformers'
# apply_chat_template uses (sandboxed, trim_blocks, lstrip_blocks, tojson as json.dumps(ensure_ascii=False),
# raise_exception). Usage: python3 render.py CONVERSATIONS.json OUT.json LABEL=MODEL_DIR_OR_FILE.jinja ...
import json
import os
import sys

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def token_text(token):
    return token.get("content", "") if isinstance(token, dict) else (token or "")


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
conversations_file, out_file, *specs = sys.argv[1:]
conversations = json.load(open(conversations_file, encoding="utf-8"))
results = {}
for spec in specs:
    label, path = spec.split("=", 1)
    bos, eos = "<s>", "</s>"
    if os.path.isdir(path):
        config = json.load(open(os.path.join(path, "tokenizer_config.json"), encoding="utf-8"))
        source, bos, eos = config["chat_template"], token_text(config.get("bos_token")), token_text(config.get("eos_token"))
    else:
        source = open(path, encoding="utf-8").read()
    template = env.from_string(source)
    for c in conversations:
        for generation in (True, False):
            key = f"{label}|{c['name']}|{'gen' if generation else 'no-gen'}"
            try:
                results[key] = template.render(messages=c["messages"], add_generation_prompt=generation, bos_token=bos, eos_token=eos)
            except TemplateError as e:
                print(f"{key}: {e}", file=sys.stderr)
                results[key] = "ERROR"
json.dump(results, open(out_file, "w", encoding="utf-8"), ensure_ascii=False, indent=2)
