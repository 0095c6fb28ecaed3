// The official OpenAI Node SDK against `breakfix serve`: chat and text completions, plain and
// streaming, model listing, and an error surfaced as the SDK's APIError.
// Usage: node openai_sdk_test.mjs BASE_URL API_KEY
import OpenAI from 'openai';
import assert from 'node:assert/strict';

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });

const models = await client.models.list();
assert.ok(models.data.length === 1, 'one model listed');
const model = models.data[0].id;

// Chat, non-streaming.
const chat = await client.chat.completions.create({
  model,
  messages: [{ role: 'system', content: 'You tell short stories.' },
             { role: 'user', content: 'Once upon a time' }],
  max_tokens: 24,
  temperature: 0,
  seed: 7,
});
assert.equal(chat.object, 'chat.completion');
assert.equal(chat.choices[0].message.role, 'assistant');
assert.equal(typeof chat.choices[0].message.content, 'string');
assert.ok(['stop', 'length'].includes(chat.choices[0].finish_reason));
assert.ok(chat.usage.completion_tokens > 0 && chat.usage.completion_tokens <= 24);

// Chat, streaming: the concatenated deltas equal the non-streaming answer (greedy, same seed).
const stream = await client.chat.completions.create({
  model,
  messages: [{ role: 'system', content: 'You tell short stories.' },
             { role: 'user', content: 'Once upon a time' }],
  max_tokens: 24,
  temperature: 0,
  seed: 7,
  stream: true,
  stream_options: { include_usage: true },
});
let text = '';
let finish = null;
let usage = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const choice of chunk.choices) {
    text += choice.delta?.content ?? '';
    if (choice.finish_reason) finish = choice.finish_reason;
  }
}
assert.equal(text, chat.choices[0].message.content, 'streamed text equals the plain answer');
assert.equal(finish, chat.choices[0].finish_reason);
assert.equal(usage.completion_tokens, chat.usage.completion_tokens);

// Legacy text completions, plain and streaming.
const completion = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 16, temperature: 0 });
assert.equal(completion.object, 'text_completion');
assert.equal(typeof completion.choices[0].text, 'string');
let streamed = '';
for await (const chunk of await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 16, temperature: 0, stream: true })) {
  streamed += chunk.choices[0]?.text ?? '';
}
assert.equal(streamed, completion.choices[0].text);

// Errors reach the SDK as APIError with the status and message.
await assert.rejects(
  client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
  (err) => err instanceof OpenAI.APIError && err.status === 404 && /does not exist/.test(err.message));
const unauthenticated = new OpenAI({ baseURL, apiKey: 'wrong-key', maxRetries: 0 });
await assert.rejects(unauthenticated.models.list(),
  (err) => err instanceof OpenAI.AuthenticationError && err.status === 401);

console.log(`OpenAI Node SDK checks passed against ${baseURL} (${model})`);
