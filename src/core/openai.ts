/**
 * @module
 * A small client for OpenAI-compatible model servers (vLLM, Ollama, LMDeploy, llama.cpp all speak the
 * chat-completions protocol), with every failure mapped to a {@link BackendError} that names the endpoint.
 *
 * Each request is bounded by a timeout (a hung server cannot hang the loader); a refused connection fails
 * at once. `fetch` is injected so tests can swap it, but the suite mostly talks to real servers.
 */
import { BackendError, BackendNotServing, BackendTimeout, BackendUnavailable, ImagesRefused } from './errors.ts'

// A 4xx whose text says this is about images means "this model cannot take images" (conclusive), not
// "the server is broken" (inconclusive).
const IMAGE_REFUSAL = /image|vision|multimodal|multi-modal|image_url|mm_|visual|clip|llava|not support.*(content|part)/i

/** One non-streamed chat completion: the answer text (content or reasoning) and its latency. */
export interface ChatAnswer {
	content: string
	reasoningContent: string
	latencyMs: number
}

/** One parsed SSE chunk of a streamed completion, stamped on arrival (performance.now()). */
export interface StreamEvent {
	at: number
	/** Null when the chunk carries no content delta (a role-only chunk, the usage chunk). */
	content: string | null
	usage: Record<string, unknown> | null
}

/** A chat message in the OpenAI format. */
export interface ChatMessage {
	role: 'system' | 'user' | 'assistant'
	content: string | ({ type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } })[]
}

/** Options of {@link BackendClient}. */
export interface BackendClientOptions {
	/** Seconds each request may take. */
	timeout: number
	fetch?: typeof fetch
}

/** Talks to one model server's OpenAI-compatible `/v1` endpoint. */
export class BackendClient {
	readonly endpoint: string
	readonly #timeout: number
	readonly #fetch: typeof fetch

	constructor(endpoint: string, options: BackendClientOptions) {
		this.endpoint = endpoint.replace(/\/+$/, '')
		this.#timeout = options.timeout
		this.#fetch = options.fetch ?? fetch
	}

	/** Model ids the server says it serves (`GET /models`). */
	async listModels(): Promise<string[]> {
		const response = await this.#request('GET', '/models')
		await this.#raiseForStatus(response, false)
		const data = (await this.#json(response)) as { data?: unknown }
		if (!data || !Array.isArray(data.data)) throw new BackendUnavailable(this.endpoint, 'GET /models did not return an OpenAI model list')
		return data.data.flatMap((m) => (m && typeof m === 'object' && 'id' in m && m.id != null ? [String(m.id)] : []))
	}

	/** @throws {BackendNotServing} when the server does not list `modelId` */
	async requireModel(modelId: string): Promise<void> {
		const served = await this.listModels()
		if (!served.includes(modelId)) throw new BackendNotServing(this.endpoint, modelId, served)
	}

	/** One chat completion; the answer may be in `content` or `reasoning_content`. */
	async chat(modelId: string, messages: ChatMessage[], options: { maxTokens?: number } = {}): Promise<ChatAnswer> {
		const started = performance.now()
		const response = await this.#request('POST', '/chat/completions', {
			model: modelId,
			messages,
			max_tokens: options.maxTokens ?? 32,
			temperature: 0,
			stream: false
		})
		await this.#raiseForStatus(response, true)
		const data = (await this.#json(response)) as { choices?: { message?: Record<string, unknown> }[] }
		const latencyMs = performance.now() - started
		const message = Array.isArray(data?.choices) ? data.choices[0]?.message : undefined
		if (!message || typeof message !== 'object') throw new BackendUnavailable(this.endpoint, 'the answer has no choices[0].message')
		return {
			content: text(message['content']),
			reasoningContent: text(message['reasoning_content'] ?? message['reasoning']),
			latencyMs
		}
	}

	/** A streamed chat completion as parsed events, asking for usage in the last chunk. */
	async *streamChat(modelId: string, messages: ChatMessage[], options: { maxTokens: number }): AsyncGenerator<StreamEvent> {
		const response = await this.#request('POST', '/chat/completions', {
			model: modelId,
			messages,
			max_tokens: options.maxTokens,
			temperature: 0,
			stream: true,
			stream_options: { include_usage: true }
		})
		await this.#raiseForStatus(response, false)
		if (!response.body) throw new BackendUnavailable(this.endpoint, 'the stream has no body')
		const decoder = new TextDecoder()
		let buffered = ''
		try {
			for await (const bytes of response.body) {
				const at = performance.now()
				buffered += decoder.decode(bytes, { stream: true })
				let newline = buffered.indexOf('\n')
				while (newline >= 0) {
					const line = buffered.slice(0, newline).trim()
					buffered = buffered.slice(newline + 1)
					newline = buffered.indexOf('\n')
					if (!line.startsWith('data:')) continue
					const payload = line.slice(5).trim()
					if (payload === '[DONE]') return
					yield this.#event(payload, at)
				}
			}
		} catch (error) {
			throw this.#mapError(error)
		}
		throw new BackendUnavailable(this.endpoint, 'the stream ended without [DONE]')
	}

	#event(payload: string, at: number): StreamEvent {
		let chunk: unknown
		try {
			chunk = JSON.parse(payload)
		} catch {
			throw new BackendUnavailable(this.endpoint, 'the stream sent a chunk that is not JSON')
		}
		if (!chunk || typeof chunk !== 'object' || Array.isArray(chunk)) {
			throw new BackendUnavailable(this.endpoint, 'the stream sent a chunk that is not an object')
		}
		const record = chunk as { choices?: unknown; usage?: unknown }
		let content: string | null = null
		const first = Array.isArray(record.choices) ? (record.choices[0] as { delta?: Record<string, unknown> } | undefined) : undefined
		const delta = first?.delta
		if (delta && typeof delta === 'object') {
			for (const key of ['content', 'reasoning_content', 'reasoning']) {
				const value = delta[key]
				if (typeof value === 'string') content = (content ?? '') + value
			}
		}
		const usage = record.usage && typeof record.usage === 'object' ? (record.usage as Record<string, unknown>) : null
		return { at, content, usage }
	}

	async #request(method: string, path: string, body?: unknown): Promise<Response> {
		try {
			return await this.#fetch(this.endpoint + path, {
				method,
				headers: body === undefined ? {} : { 'content-type': 'application/json' },
				body: body === undefined ? undefined : JSON.stringify(body),
				redirect: 'manual',
				signal: AbortSignal.timeout(this.#timeout * 1000)
			})
		} catch (error) {
			throw this.#mapError(error)
		}
	}

	#mapError(error: unknown): BackendError {
		if (error instanceof BackendError) return error
		const name = (error as Error)?.name
		if (name === 'TimeoutError' || name === 'AbortError') return new BackendTimeout(this.endpoint, this.#timeout)
		const code = (error as { code?: string })?.code ?? ''
		if (code === 'ConnectionRefused' || code === 'ECONNREFUSED') return new BackendUnavailable(this.endpoint, 'connection refused')
		if (/Invalid URL|unsupported|protocol/i.test(String((error as Error)?.message))) {
			return new BackendUnavailable(this.endpoint, 'the endpoint URL is invalid; fix base_url, host or port in the registry')
		}
		return new BackendUnavailable(this.endpoint, `the connection failed (${code || (error as Error)?.message || 'unknown error'})`)
	}

	async #raiseForStatus(response: Response, images: boolean): Promise<void> {
		if (response.status < 400) return
		const detail = await errorText(response)
		if (response.status === 401 || response.status === 403) {
			throw new BackendUnavailable(this.endpoint, `HTTP ${response.status}: the server wants credentials (${detail.slice(0, 120)})`)
		}
		if (images && response.status < 500 && ![404, 408, 429].includes(response.status) && IMAGE_REFUSAL.test(detail)) {
			throw new ImagesRefused(this.endpoint, response.status, detail)
		}
		throw new BackendUnavailable(this.endpoint, `HTTP ${response.status}: ${detail.slice(0, 200)}`)
	}

	async #json(response: Response): Promise<unknown> {
		let body: string
		try {
			body = await response.text()
		} catch (error) {
			throw this.#mapError(error)
		}
		try {
			return JSON.parse(body)
		} catch {
			throw new BackendUnavailable(this.endpoint, 'the answer is not JSON')
		}
	}
}

function text(value: unknown): string {
	if (typeof value === 'string') return value
	if (Array.isArray(value)) {
		return value
			.map((part) => (part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string' ? (part as { text: string }).text : ''))
			.filter(Boolean)
			.join(' ')
	}
	return ''
}

async function errorText(response: Response): Promise<string> {
	let body = ''
	try {
		body = await response.text()
	} catch {
		return `(no body)`
	}
	try {
		const data = JSON.parse(body) as unknown
		if (data && typeof data === 'object') {
			const record = data as Record<string, unknown>
			const err = record['error'] ?? record['detail'] ?? data
			if (err && typeof err === 'object') return String((err as Record<string, unknown>)['message'] ?? JSON.stringify(err)).slice(0, 500)
			return String(err).slice(0, 500)
		}
		return String(data).slice(0, 500)
	} catch {
		return body.slice(0, 500)
	}
}
