/**
 * @module
 * The OpenAI-compatible gateway: one endpoint for every model in the registry. A request names a model
 * (a registry name, an alias, or `role:<role>`); it is resolved by the rules of select (a locked model
 * whose files drifted is refused), checked against what the request needs (images need vision and a probe
 * that did not fail, embeddings need embedding, tools need tools), and forwarded to the model's server with
 * `model` set to the id that server knows. Answers come back with the name the client asked for; streams
 * are passed through event by event as they arrive, and every request is measured.
 *
 * Pure of HTTP framework concerns: it takes a parsed body and gives a standard `Response`; the HTTP layer
 * (http/routes/gateway.ts) records what {@link GatewayRecord} reports.
 */
import type { Capability } from './capabilities.ts'
import { isDeprecated, visionOk } from './entry.ts'
import { InvalidName, LoaderError, MissingCapabilities } from './errors.ts'
import type { Registry } from './registry.ts'
import type { Selection } from './schema.ts'
import { type Deps, selectModel } from './service.ts'

/** The operations the gateway forwards, by their path under `/v1`. */
export type GatewayRoute = 'chat/completions' | 'completions' | 'embeddings'

/** What one forwarded request did, for metrics and the access log (never the prompt or the answer). */
export interface GatewayRecord {
	route: GatewayRoute
	/** The model as the client named it. */
	requested: string
	/** The registry name it resolved to (undefined when it did not resolve). */
	model?: string
	/** The status the client got; 499 when the client went away first. */
	status: number
	stream: boolean
	/** Time to the first content token (streams) or to the whole answer, ms. */
	ttftMs: number | null
	durationMs: number
	/** Tokens generated: from `usage`, or counted from the streamed chunks. */
	tokens: number | null
	bytesIn: number
	bytesOut: number
	/** Whether the model did its job: a sample for its rolling window (client-side problems are not). */
	outcome: 'ok' | 'failed' | 'rejected' | 'client_closed'
	/** The error code, when there is one. */
	error?: string
}

/** An error in OpenAI's shape, which OpenAI clients parse: `{"error": {"message", "type", "code"}}`. */
export class GatewayError extends Error {
	override name = 'GatewayError'
	constructor(
		readonly status: number,
		readonly code: string,
		message: string
	) {
		super(message)
	}

	get type(): string {
		return errorType(this.status)
	}

	toResponse(): Response {
		return openaiErrorResponse(this.status, this.code, this.message)
	}
}

/** OpenAI's error `type` for a status. */
export function errorType(status: number): string {
	if (status === 401) return 'authentication_error'
	if (status === 429) return 'rate_limit_error'
	return status >= 500 ? 'api_error' : 'invalid_request_error'
}

export function openaiErrorResponse(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
	return new Response(JSON.stringify({ error: { message, type: errorType(status), code } }), {
		status,
		headers: { 'content-type': 'application/json', ...headers }
	})
}

/** A loader error (unknown model, lock violation...) as the gateway answers it. */
export function gatewayErrorOf(error: LoaderError, status: number): GatewayError {
	// A missing capability is a request the model cannot serve: OpenAI says 400 for that.
	if (error instanceof MissingCapabilities) return new GatewayError(400, 'model_not_capable', error.message)
	// No model can have a name that breaks the naming rules: to an OpenAI client, that model does not exist.
	if (error instanceof InvalidName) return new GatewayError(404, 'model_not_found', error.message)
	const code = error.code === 'lock_violation' ? 'model_locked' : error.code
	return new GatewayError(status, code, error.message)
}

/** What `body` needs of a model, on `route`. */
export function requiredCapabilities(route: GatewayRoute, body: Record<string, unknown>): Capability[] {
	if (route === 'embeddings') return ['embedding']
	const needs: Capability[] = []
	if (route === 'chat/completions' && hasImage(body['messages'])) needs.push('vision')
	if (Array.isArray(body['tools']) && body['tools'].length > 0) needs.push('tools')
	else if (Array.isArray(body['functions']) && body['functions'].length > 0) needs.push('tools')
	return needs
}

function hasImage(messages: unknown): boolean {
	if (!Array.isArray(messages)) return false
	return messages.some(
		(m) =>
			typeof m === 'object' &&
			m !== null &&
			Array.isArray((m as { content?: unknown }).content) &&
			((m as { content: unknown[] }).content as unknown[]).some(
				(part) => typeof part === 'object' && part !== null && /^(image_url|input_image|image)$/.test(String((part as { type?: unknown }).type))
			)
	)
}

/**
 * The model a request goes to, by the rules of select, refused when it cannot serve the request.
 * @throws {GatewayError} 400 for a gap (naming it), a model whose probe says it cannot see, or no model
 * @throws {LoaderError} unknown model (with suggestions), no model for the role, lock violations
 */
export function resolveTarget(deps: Deps, registry: Registry, route: GatewayRoute, body: Record<string, unknown>): Selection {
	const requested = body['model']
	if (typeof requested !== 'string' || !requested) {
		throw new GatewayError(400, 'missing_model', 'The request needs "model": a registry name, an alias, or role:<role>. GET /openai/v1/models lists them')
	}
	const require = requiredCapabilities(route, body)
	const role = requested.startsWith('role:') ? requested.slice(5) : undefined
	const selection = selectModel(deps, role !== undefined ? { role, require } : { name: requested, require }, registry)
	if (require.includes('vision') && visionOk(registry.get(selection.name)) === false) {
		throw new GatewayError(
			400,
			'model_cannot_see',
			`Model ${JSON.stringify(selection.name)} failed its vision probe (it cannot see images). Send images to a model that passed, or probe it again: imageworks-loader probe-vision ${selection.name}`
		)
	}
	return selection
}

/** Options of {@link forward}. */
export interface ForwardOptions {
	/** Aborted when the client goes away: the upstream request is aborted at once. */
	signal: AbortSignal
	/** Seconds to wait for the backend's answer to start, and between two streamed chunks. */
	timeout: number
	/** Called once, when the request is over (answered, failed, or abandoned by the client). */
	onDone: (record: GatewayRecord) => void
	fetch?: typeof fetch
}

const encoder = new TextEncoder()

/**
 * Forward `body` (already resolved to `selection`) to the model's server and answer the client.
 * Never throws: backend failures are OpenAI-shaped 502/504 answers (or an error event in a stream).
 */
export async function forward(route: GatewayRoute, body: Record<string, unknown>, bytesIn: number, selection: Selection, options: ForwardOptions): Promise<Response> {
	const requested = body['model'] as string
	const stream = route !== 'embeddings' && body['stream'] === true
	const started = performance.now()
	const base: Omit<GatewayRecord, 'status' | 'ttftMs' | 'durationMs' | 'tokens' | 'bytesOut' | 'outcome'> = {
		route,
		requested,
		model: selection.name,
		stream,
		bytesIn
	}
	const upstream = new AbortController()
	const onClientGone = () => upstream.abort(new DOMException('the client went away', 'AbortError'))
	options.signal.addEventListener('abort', onClientGone, { once: true })
	let timedOut = false
	let timer: ReturnType<typeof setTimeout> | undefined
	/** (Re)start the timeout: for the answer to start, and again after each streamed chunk. */
	const arm = () => {
		clearTimeout(timer)
		timer = setTimeout(() => {
			timedOut = true
			upstream.abort(new DOMException('timeout', 'TimeoutError'))
		}, options.timeout * 1000)
	}
	arm()
	const finish = (record: Pick<GatewayRecord, 'status' | 'ttftMs' | 'durationMs' | 'tokens' | 'bytesOut' | 'outcome' | 'error'>) => {
		clearTimeout(timer)
		options.signal.removeEventListener('abort', onClientGone)
		options.onDone({ ...base, ...record })
	}
	const fail = (status: number, code: string, message: string): Response => {
		const response = openaiErrorResponse(status, code, message)
		finish({ status, ttftMs: null, durationMs: performance.now() - started, tokens: null, bytesOut: 0, outcome: 'failed', error: code })
		return response
	}
	const clientGone = (): Response => {
		finish({ status: 499, ttftMs: null, durationMs: performance.now() - started, tokens: null, bytesOut: 0, outcome: 'client_closed' })
		return new Response(null, { status: 499 })
	}

	let response: Response
	try {
		response = await (options.fetch ?? fetch)(`${selection.endpoint}/${route}`, {
			method: 'POST',
			headers: { 'content-type': 'application/json', accept: stream ? 'text/event-stream' : 'application/json' },
			body: JSON.stringify({ ...body, model: selection.internal_model_id }),
			signal: upstream.signal
		})
	} catch (error) {
		if (options.signal.aborted) return clientGone()
		if (timedOut) return fail(504, 'backend_timeout', `The server of ${selection.name} at ${selection.endpoint} did not answer within ${options.timeout} s`)
		return fail(502, 'backend_unavailable', `The server of ${selection.name} at ${selection.endpoint} cannot be reached (${(error as Error).message})`)
	}

	if (!stream || !response.ok || !response.body) {
		let text: string
		try {
			text = await response.text()
		} catch {
			if (options.signal.aborted) return clientGone()
			if (timedOut) return fail(504, 'backend_timeout', `The server of ${selection.name} did not finish its answer within ${options.timeout} s`)
			return fail(502, 'backend_unavailable', `The server of ${selection.name} broke off its answer`)
		}
		const durationMs = performance.now() - started
		if (response.status >= 500) {
			return fail(502, 'backend_error', `The server of ${selection.name} answered ${response.status}: ${text.slice(0, 300)}`)
		}
		let answer: unknown
		try {
			answer = JSON.parse(text)
		} catch {
			return fail(502, 'backend_garbage', `The server of ${selection.name} answered ${response.status} with a body that is not JSON`)
		}
		if (response.ok && typeof answer === 'object' && answer !== null && !Array.isArray(answer)) {
			;(answer as Record<string, unknown>)['model'] = requested
		}
		const out = JSON.stringify(answer)
		const usage = (answer as { usage?: { completion_tokens?: unknown } } | null)?.usage
		const tokens = typeof usage?.completion_tokens === 'number' ? usage.completion_tokens : route === 'embeddings' ? 0 : null
		finish({
			status: response.status,
			ttftMs: durationMs,
			durationMs,
			tokens,
			bytesOut: Buffer.byteLength(out),
			// a 4xx from the backend is the request's fault (too long a prompt...), not the model's
			outcome: response.ok ? 'ok' : 'rejected',
			error: response.ok ? undefined : `backend_${response.status}`
		})
		return new Response(out, { status: response.status, headers: { 'content-type': 'application/json' } })
	}

	// ---- a stream: each upstream chunk's complete events, rewritten (model) and measured, sent at once
	const reader = response.body.getReader()
	const decoder = new TextDecoder()
	let buffered = ''
	let ttftMs: number | null = null
	let chunks = 0
	let usageTokens: number | null = null
	let sawDone = false
	let bytesOut = 0
	let over = false
	const end = (outcome: GatewayRecord['outcome'], status: number, error?: string) => {
		if (over) return
		over = true
		finish({ status, ttftMs, durationMs: performance.now() - started, tokens: usageTokens ?? chunks, bytesOut, outcome, error })
	}
	const rewrite = (event: string): string => {
		const data = event
			.split(/\r?\n/)
			.filter((line) => line.startsWith('data:'))
			.map((line) => line.slice(5).trimStart())
			.join('\n')
		if (!data) return `${event}\n\n`
		if (data === '[DONE]') {
			sawDone = true
			return 'data: [DONE]\n\n'
		}
		let chunk: Record<string, unknown>
		try {
			chunk = JSON.parse(data) as Record<string, unknown>
		} catch {
			return `${event}\n\n` // not ours to judge: passed on as it came
		}
		if (typeof chunk !== 'object' || chunk === null) return `${event}\n\n`
		const choice = (chunk['choices'] as { delta?: { content?: unknown; reasoning_content?: unknown }; text?: unknown }[] | undefined)?.[0]
		const piece = choice?.delta?.content ?? choice?.delta?.reasoning_content ?? choice?.text
		if (typeof piece === 'string' && piece.length > 0) {
			chunks++
			ttftMs ??= performance.now() - started
		}
		const usage = chunk['usage'] as { completion_tokens?: unknown } | undefined
		if (typeof usage?.completion_tokens === 'number') usageTokens = usage.completion_tokens
		if ('model' in chunk) chunk['model'] = requested
		return `data: ${JSON.stringify(chunk)}\n\n`
	}
	const brokenEvent = (message: string) =>
		encoder.encode(`data: ${JSON.stringify({ error: { message, type: 'api_error', code: 'backend_stream_broken' } })}\n\n`)

	const body$ = new ReadableStream<Uint8Array>({
		async pull(controller) {
			for (;;) {
				let result: Awaited<ReturnType<typeof reader.read>>
				try {
					result = await reader.read()
				} catch {
					if (options.signal.aborted) return end('client_closed', 499)
					const why = timedOut ? `sent nothing for ${options.timeout} s` : 'broke off the stream'
					controller.enqueue(brokenEvent(`The server of ${selection.name} ${why}; the answer is incomplete`))
					controller.close()
					return end('failed', 502, timedOut ? 'backend_timeout' : 'backend_stream_broken')
				}
				if (result.done) {
					if (buffered.trim()) controller.enqueue(encoder.encode(rewrite(buffered.trim())))
					if (!sawDone) {
						controller.enqueue(brokenEvent(`The server of ${selection.name} ended the stream before it was complete`))
						controller.close()
						return end('failed', 502, 'backend_stream_broken')
					}
					controller.close()
					return end('ok', 200)
				}
				arm()
				buffered += decoder.decode(result.value, { stream: true })
				let out = ''
				let boundary: RegExpExecArray | null
				while ((boundary = /\r?\n\r?\n/.exec(buffered))) {
					out += rewrite(buffered.slice(0, boundary.index))
					buffered = buffered.slice(boundary.index + boundary[0].length)
				}
				if (out) {
					const bytes = encoder.encode(out)
					bytesOut += bytes.byteLength
					controller.enqueue(bytes)
					return // one upstream chunk, forwarded as it came
				}
			}
		},
		cancel() {
			onClientGone() // stop the backend's work at once
			void reader.cancel().catch(() => undefined)
			end('client_closed', 499)
		}
	})
	return new Response(body$, {
		status: 200,
		headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' }
	})
}

/** `GET /openai/v1/models`: every model that is not deprecated, in OpenAI's list shape. */
export function openaiModelList(registry: Registry): { object: 'list'; data: { id: string; object: 'model'; owned_by: string; created: number }[] } {
	const data = registry.entries
		.filter((e) => !isDeprecated(e))
		.map((e) => {
			const at = (e as Record<string, unknown>)['downloaded_at']
			const downloaded = typeof at === 'string' ? Date.parse(at) : Number.NaN
			return { id: e.name, object: 'model' as const, owned_by: e.backend, created: Number.isFinite(downloaded) ? Math.floor(downloaded / 1000) : 0 }
		})
		.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
	return { object: 'list', data }
}
