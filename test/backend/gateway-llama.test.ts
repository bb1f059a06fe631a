/**
 * The gateway in front of a real model server: llama-cpp-python's OpenAI-compatible server on the tiny
 * generated models, reached through the compiled binary with the official `openai` client. The weights
 * are random, so the answers are gibberish; what is proven is the protocol: chat, a stream, an image to
 * the LLaVA model, a text completion and embeddings, each under the name the client asked for, measured.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import OpenAI from 'openai'
import { Database } from 'bun:sqlite'
import { statePathFor } from '../../src/core/state.ts'
import { type Server, startServer } from '../helpers/binary.ts'
import { sharedLlamaServer, type LlamaServer } from '../helpers/llama.ts'
import { circlePng, pngDataUri } from '../helpers/png.ts'
import { entry, tempDir, writeRegistry } from '../helpers/registry.ts'

const INSTALL_TIMEOUT = 15 * 60_000
const SLOW = 120_000

let llama: LlamaServer
let server: Server
let client: OpenAI
let dir: ReturnType<typeof tempDir>
let registryPath: string

beforeAll(async () => {
	llama = await sharedLlamaServer()
	dir = tempDir()
	registryPath = writeRegistry(join(dir.path, 'model_registry.json'), [
		entry('tiny-text', { backend: 'llamacpp', baseUrl: llama.endpoint, servedModelId: llama.models.text, roles: ['summary'] }),
		entry('tiny-llava', { backend: 'llamacpp', baseUrl: llama.endpoint, servedModelId: llama.models.vision, capabilities: { vision: true } }),
		entry('tiny-embedder', { backend: 'llamacpp', baseUrl: llama.endpoint, servedModelId: llama.models.embedding, capabilities: { text: false, embedding: true } })
	])
	server = await startServer(registryPath)
	client = new OpenAI({ baseURL: `${server.url}/openai/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 })
}, INSTALL_TIMEOUT)

afterAll(async () => {
	await server?.stop()
	dir?.[Symbol.dispose]()
})

const metricsOf = async (name: string) => (await (await fetch(`${server.url}/v1/models/${name}/metrics`)).json()) as { rolling_samples: number; ttft_ms_avg: number | null }

describe('the gateway on llama.cpp', () => {
	test(
		'a chat completion, by role, comes back under the name asked for, with usage, and is measured',
		async () => {
			const answer = await client.chat.completions.create({ model: 'role:summary', messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 8, temperature: 0 })
			expect(answer.model).toBe('role:summary')
			expect(answer.choices[0]?.message.role).toBe('assistant')
			expect(answer.usage?.completion_tokens).toBeGreaterThan(0)
			expect((await metricsOf('tiny-text')).rolling_samples).toBeGreaterThanOrEqual(1)
		},
		SLOW
	)

	test(
		'a stream arrives chunk by chunk, every chunk under the name asked for; its tokens are counted from the chunks',
		async () => {
			const before = (await metricsOf('tiny-text')).rolling_samples
			const stream = await client.chat.completions.create({
				model: 'tiny-text',
				messages: [{ role: 'user', content: 'Count with me' }],
				max_tokens: 12,
				temperature: 0,
				stream: true,
				stream_options: { include_usage: true }
			})
			let contentChunks = 0
			for await (const chunk of stream) {
				expect(chunk.model).toBe('tiny-text')
				if (chunk.choices[0]?.delta?.content) contentChunks++
			}
			expect(contentChunks).toBeGreaterThan(1)
			// llama-cpp-python 0.3.7 sends no usage chunk: the gateway counted the content chunks
			await Bun.sleep(20)
			const db = new Database(statePathFor(registryPath), { readonly: true })
			try {
				const last = db.query("SELECT tokens_generated, source FROM samples WHERE model = 'tiny-text' ORDER BY id DESC LIMIT 1").get()
				expect(last).toEqual({ tokens_generated: contentChunks, source: 'gateway' })
			} finally {
				db.close()
			}
			expect((await metricsOf('tiny-text')).rolling_samples).toBe(before + 1)
		},
		SLOW
	)

	test(
		'an image reaches the tiny LLaVA model; a text completion and embeddings work too',
		async () => {
			const seen = await client.chat.completions.create({
				model: 'tiny-llava',
				messages: [{ role: 'user', content: [{ type: 'text', text: 'What colour?' }, { type: 'image_url', image_url: { url: pngDataUri(circlePng([30, 70, 220])) } }] }],
				max_tokens: 6,
				temperature: 0
			})
			expect(seen.model).toBe('tiny-llava')
			expect(seen.usage?.prompt_tokens).toBeGreaterThan(20) // the image's tokens are in the prompt

			const completion = await client.completions.create({ model: 'tiny-text', prompt: 'Once upon a time', max_tokens: 5, temperature: 0 })
			expect(completion.model).toBe('tiny-text')
			expect(typeof completion.choices[0]?.text).toBe('string')

			const embedded = await client.embeddings.create({ model: 'tiny-embedder', input: ['a red circle', 'a blue square'] })
			expect(embedded.model).toBe('tiny-embedder')
			expect(embedded.data.length).toBe(2)
			expect(embedded.data[0]?.embedding.length).toBeGreaterThan(8)
			expect((await metricsOf('tiny-embedder')).rolling_samples).toBe(1)
		},
		SLOW
	)
})
