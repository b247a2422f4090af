// Hugging Face's side of .ci/steps/template-parity.sh: the same conversations and templates rendered by
// @huggingface/jinja. Usage: node render.mjs NODE_MODULES CONVERSATIONS.json OUT.json LABEL=MODEL_DIR_OR_FILE.jinja ...
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [modules, conversationsFile, outFile, ...specs] = process.argv.slice(2);
const { Template } = createRequire(path.join(path.resolve(modules), "noop.js"))("@huggingface/jinja");
const conversations = JSON.parse(fs.readFileSync(conversationsFile, "utf8"));
const tokenText = (t) => (t && typeof t === "object" ? t.content : t) ?? "";
const results = {};
for (const spec of specs) {
  const [label, file] = [spec.slice(0, spec.indexOf("=")), spec.slice(spec.indexOf("=") + 1)];
  let source, bos = "<s>", eos = "</s>";
  if (fs.statSync(file).isDirectory()) {
    const config = JSON.parse(fs.readFileSync(path.join(file, "tokenizer_config.json"), "utf8"));
    source = config.chat_template;
    bos = tokenText(config.bos_token);
    eos = tokenText(config.eos_token);
  } else {
    source = fs.readFileSync(file, "utf8");
  }
  const template = new Template(source);
  for (const c of conversations) {
    for (const generation of [true, false]) {
      const key = `${label}|${c.name}|${generation ? "gen" : "no-gen"}`;
      try {
        results[key] = template.render({ messages: c.messages, add_generation_prompt: generation, bos_token: bos, eos_token: eos });
      } catch (e) {
        console.error(`${key}: ${e.message}`);
        results[key] = "ERROR";
      }
    }
  }
}
fs.writeFileSync(outFile, JSON.stringify(results, null, 2));
