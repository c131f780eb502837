#!/usr/bin/env python3
"""Writes Tests/Fixtures/tokenizer/jinja_expectations.json: what Jinja2, configured as transformers
configures it for chat templates, renders for

* `snippets`: small templates exercising whitespace control, filters, tests, loops, macros, namespaces,
  Python string/dict methods and value printing;
* `conversations`: extra conversations through the kit's Qwen3.5 template and through its GGUF variant
  (`for args_name in tool_call.arguments`, see the kit README): parallel and nested tool calls, multi-step
  tool use, kept and dropped reasoning, vision ids, list contents, unicode, template errors.

transformers' environment: ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
extensions=[loopcontrols]), `tojson` = json.dumps(ensure_ascii=False), `raise_exception` global.

Usage: python3 Tools/gen-chat-template-expectations.py   (needs `pip install jinja2`)
"""
import json
import pathlib

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIG = ROOT / "Tests/Fixtures/conformance/tokenizer/tokenizer_config.json"
OUT = ROOT / "Tests/Fixtures/tokenizer/jinja_expectations.json"


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def render(env, template, context):
    try:
        return {"rendered": env.from_string(template).render(**context)}
    except jinja2.exceptions.TemplateError as e:
        return {"error": str(e)}


SNIPPETS = [
    ("whitespace", "  {% if true %}\n  x\n  {% endif %}\n{{- ' y ' -}}\n z {# c #}\nw\n    {%- if true %} t {% endif -%}  \n  end{# c2 #}\n\n", {}),
    ("lstrip_after_text", "a {% if true %}b{% endif %}\n  {% for i in [1,2] %}\n  {{ i }}\n  {% endfor %}\nc", {}),
    ("filters", "{{ ' a b '|trim }}|{{ [1,2,3]|length }}|{{ 'abc'|upper }}|{{ {'a':1,'b':[1,2.5,none,true]}|tojson }}|{{ x|default('d') }}|{{ [3,1]|join(',') }}"
                "|{{ 'a-b-c'.split('-')[1:] }}|{{ 'x'~1~none }}|{{ 7//2 }} {{ 7%3 }} {{ 7/2 }} {{ 2**3 }} {{ -7//2 }}|{{ [1,2,3][::-1] }}|{{ 'hello'[1:3] }}|{{ 'hello'[-1] }}"
                "|{{ ['a','b']|first }}{{ ['a','b']|last }}|{{ 'AbC'|lower }}|{{ [1,1,2]|unique|list }}|{{ 'x y'|replace(' ', '_') }}|{{ 3.0|int }} {{ '4'|int + 1 }}"
                "|{{ {'b':1,'a':2}|tojson(indent=2) }}|{{ 'é\"\\n'|tojson }}|{{ [1,2]|reverse|list }}|{{ -3|abs }}|{{ 'a b  c'|wordcount }}|{{ '' ~ 1.5 ~ 1e20 }}", {}),
    ("tests", "{{ x is defined }} {{ none is none }} {{ 'a' is string }} {{ {} is mapping }} {{ [] is iterable }} {{ 'a' is iterable }} {{ 3 is odd }} {{ 1 is number }}"
              " {{ true is true }} {{ 1 is true }} {{ false is false }} {{ 4 is divisibleby(2) }} {{ [] is sequence }} {{ 'A' is upper }} {{ x is not defined }} {{ 1.5 is float }}"
              " {{ 2 is integer }} {{ none is not none }} {{ 3 is eq 3 }} {{ 'a' in 'cat' }} {{ 'z' not in ['z'] }} {{ 'k' in {'k': 1} }}", {}),
    ("loops", "{% for k, v in d|items %}{{ loop.index }}:{{ k }}={{ v }}{% if not loop.last %},{% endif %}{% endfor %}|"
              "{% for x in [1,2,3] if x > 1 %}{{ x }}{{ loop.length }}{{ loop.first }}{% else %}none{% endfor %}|{% for x in [] %}a{% else %}empty{% endfor %}|"
              "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x > 4 %}{% break %}{% endif %}{{ x }}{% endfor %}|"
              "{% for x in 'ab' %}{{ loop.revindex0 }}{{ x }}{{ loop.previtem }}{{ loop.nextitem }}{% endfor %}|{% for a in [[1,2],[3,4]] %}{% for b in a %}{{ loop.index0 }}{{ b }}{% endfor %}{% endfor %}",
     {"d": {"z": 1, "a": [2], "m": "s"}}),
    ("macros_namespaces", "{% macro m(a, b='B', c=none) %}[{{ a }}{{ b }}{{ c }}{{ g }}]{% endmacro %}{{ m(1) }}{{ m(1, 2) }}{{ m(1, c=3) }}|"
                          "{% set ns = namespace(n=0, s='') %}{% for i in [1,2,3] %}{% set ns.n = ns.n + i %}{% set ns.s = ns.s ~ i %}{% set local = i %}{% endfor %}{{ ns.n }} {{ ns.s }} {{ local }}|"
                          "{% set a, b = 1, 2 %}{{ a }}{{ b }}|{% set blk %}in {{ a }} block{% endset %}{{ blk|upper }}|{{ m(1)|trim == '[1BNoneG]' }}", {"g": "G"}),
    ("methods", "{{ 'x\\n\\n'.rstrip('\\n') }}|{{ '\\n y'.lstrip() }}|{{ 'xxaxx'.strip('x') }}|{{ ' a  b '.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}"
                "|{{ 'a,b,c'.rsplit(',', 1) }}|{{ 'hello world'.title() }}|{{ 'banana'.count('an') }}|{{ 'banana'.find('n') }}|{{ 'abc'.startswith(('x', 'a')) }}|{{ 'abc'.endswith('bc') }}"
                "|{{ 'e\u0301'.startswith('e') }}|{{ '-'.join(['a', 'b']) }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ d.get('a') }} {{ d.get('q', 'dflt') }} {{ d.get('q') }}|{{ d.keys()|list }} {{ d.values()|list }}"
                "|{{ d.items()|list|length }}|{{ 'ab'.upper() }}{{ 'AB'.lower() }}|{{ 'word'.capitalize() }}|{{ '12'.isdigit() }}", {"d": {"a": 1, "b": [True, None]}}),
    ("printing", "{{ [1, 'a', none, true, 1.0, 'it\\'s'] }} {{ {'k': 'v', 'n': [1]} }} {{ none }} {{ false }} {{ undefined_thing }} {{ 10 / 4 }} {{ 1e-7 }} {{ 3 * 'ab' }} {{ [1] + [2] }}", {}),
    ("select_map", "{{ users|selectattr('active')|map(attribute='name')|join(', ') }}|{{ users|rejectattr('active')|map(attribute='name')|list }}|{{ [0,1,2]|select('odd')|list }}"
                   "|{{ users|selectattr('name', 'equalto', 'b')|list|length }}|{{ users|map(attribute='missing', default='?')|list }}",
     {"users": [{"name": "a", "active": True}, {"name": "b", "active": False}, {"name": "c", "active": True}]}),
    ("conditionals", "{{ 'yes' if x else 'no' }}|{{ 'a' if false }}|{{ 1 if 0 else 2 if 0 else 3 }}|{{ not x and y or 'z' }}|{{ (1 + 2) * 3 - -1 }}|{{ 1 < 2 <= 2 }}|{{ 'b' > 'a' }}|{{ [] or 'empty' }}|{{ 0 and 1 }}",
     {"x": "", "y": 5}),
    ("raw_comments_crlf", "a\r\n  {%- raw %} {{ kept }} {% if %}{% endraw -%}\r\n b {#- note -#} c\r\n    {#- x #}\r\n  {%+ if true %}d{% endif %}\r\n", {}),
    ("errors", "{{ raise_exception('boom: ' ~ 42) }}", {}),
]


def conversations():
    weather = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}}
    search = {"type": "function", "function": {"name": "search", "description": "Search the web “quoted”.", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}
    call = lambda name, args: {"type": "function", "function": {"name": name, "arguments": args}}
    return [
        ("parallel_nested_tool_calls", [
            {"role": "user", "content": "Weather in Paris and Lyon? Also search."},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                call("get_weather", {"city": "Paris", "days": 3, "opts": {"unit": "c", "alerts": [1, 2]}, "flag": True, "none": None, "ratio": 0.5}),
                call("get_weather", {"city": "Lyon"}), call("search", {"q": "météo 天气 🌦"})]},
            {"role": "tool", "content": "{\"t\": 21}"}, {"role": "tool", "content": "{\"t\": 19}"}, {"role": "tool", "content": "results"},
        ], [weather, search], {"enable_thinking": True}),
        ("multi_step_tools_keep_reasoning", [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "First question"},
            {"role": "assistant", "content": "<think>\nold thoughts\n</think>\n\nOld answer."},
            {"role": "user", "content": "Use tools."},
            {"role": "assistant", "content": "<think>\nplan A\n</think>\n\n", "tool_calls": [call("search", {"q": "a"})]},
            {"role": "tool", "content": "ra"},
            {"role": "assistant", "content": "", "reasoning_content": "  plan B  ", "tool_calls": [call("search", {"q": "b"})]},
            {"role": "tool", "content": "rb"},
            {"role": "assistant", "content": "Done: <b>ok</b>"},
        ], [search], {}),
        ("vision_ids_and_parts", [
            {"role": "system", "content": [{"type": "text", "text": "  System in parts.  "}]},
            {"role": "user", "content": [{"type": "image", "image": "a.png"}, {"type": "text", "text": "and"}, {"type": "video", "video": "v.mp4"},
                                         {"type": "image"}, {"type": "text", "text": " compare "}]},
            {"role": "assistant", "content": "They differ."},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}, {"type": "text", "text": "this one?"}]},
        ], None, {"add_vision_id": True, "enable_thinking": False}),
        ("unicode_and_spacing", [
            {"role": "user", "content": "  Привет, 世界! 👋🏽 e\u0301  \n\n"},
            {"role": "assistant", "content": None, "tool_calls": [call("search", {"q": "x"})]},
            {"role": "tool", "content": "<tool_response>nested</tool_response>"},
        ], [search], {}),
        ("tools_without_system", [{"role": "user", "content": "hi"}], [weather], {"enable_thinking": False}),
        ("error_system_image", [{"role": "system", "content": [{"type": "image"}]}, {"role": "user", "content": "x"}], None, {}),
        ("error_no_user_query", [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}], None, {}),
        ("error_unknown_role", [{"role": "user", "content": "a"}, {"role": "critic", "content": "b"}], None, {}),
    ]


def main():
    env = environment()
    template = json.loads(CONFIG.read_text())["chat_template"]
    gguf_variant = template.replace("{%- for args_name, args_value in tool_call.arguments|items %}",
                                    "{%- for args_name in tool_call.arguments %}\n                        {%- set args_value = tool_call.arguments[args_name] %}")
    assert gguf_variant != template
    snippets = [{"name": n, "template": t, "context": c, **render(env, t, c)} for n, t, c in SNIPPETS]
    convs = []
    for name, messages, tools, kwargs in conversations():
        for variant, source in (("hf", template), ("gguf_args_loop", gguf_variant)):
            context = {"messages": messages, "tools": tools, "add_generation_prompt": True, "eos_token": "<|im_end|>",
                       "pad_token": "<|endoftext|>", "bos_token": None, **kwargs}
            convs.append({"name": f"{name}/{variant}", "variant": variant, "messages": messages, "tools": tools, "kwargs": kwargs,
                          **render(env, source, context)})
    OUT.write_text(json.dumps({"generator": "Tools/gen-chat-template-expectations.py", "jinja2": jinja2.__version__,
                               "gguf_variant_template": gguf_variant, "snippets": snippets, "conversations": convs},
                              ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): {len(snippets)} snippets, {len(convs)} conversations")


main()
