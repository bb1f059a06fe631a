/**
 * @module
 * `/openai/v1/*`: the OpenAI-compatible gateway (core/gateway.ts) as routes. An application switches by
 * changing its base URL to `http://HOST:PORT/openai/v1`. Errors here are in OpenAI's shape, since OpenAI
 * clients parse that; every request is measured: a metrics sample for the model's rolling window,
 * Prometheus counters and histograms, and one JSON access-log line (never the prompt or the answer).
 */
import { type DocumentDecoration, Elysia } from 'elysia'
import { LoaderError } from '../../core/errors.ts'
import { GatewayError, type GatewayRecord, type GatewayRoute, forward, gatewayErrorOf, openaiModelList, resolveTarget } from '../../core/gateway.ts'
import type { Deps } from '../../core/service.ts'
import { FAILED_SOURCE } from '../../core/state.ts'
import { redact, statusFor } from '../errors.ts'
import { openaiResponses } from '../model.ts'
import type { Counters } from '../prom.ts'

export function gatewayRoutes(deps: Deps, counters: Counters, log: (line: string) => void) {
	const record = (r: GatewayRecord) => {
		counters.gatewayRequest(r)
		if (r.model && (r.outcome === 'ok' || r.outcome === 'failed')) {
			try {
				deps.state.addSamples(
					r.model,
					[{ ttftMs: r.ttftMs ?? r.durationMs, tokensGenerated: r.tokens ?? 0, durationMs: r.durationMs, at: Date.now() / 1000 }],
					r.outcome === 'ok' ? 'gateway' : FAILED_SOURCE
				)
			} catch (error) {
				log(`gateway: could not record a sample for ${r.model}: ${(error as Error).message}`)
			}
		}
		log(
			JSON.stringify({
				at: new Date().toISOString(),
				gateway: r.route,
				requested: r.requested,
				model: r.model ?? null,
				status: r.status,
				outcome: r.outcome,
				stream: r.stream,
				ttft_ms: r.ttftMs === null ? null : Math.round(r.ttftMs * 100) / 100,
				duration_ms: Math.round(r.durationMs * 100) / 100,
				tokens: r.tokens,
				bytes_in: r.bytesIn,
				bytes_out: r.bytesOut,
				...(r.error ? { error: r.error } : {})
			})
		)
	}

	const handle = (route: GatewayRoute) =>
	async ({ body, request }: { body: unknown; request: Request }) => {
		const started = performance.now()
		const parsed = body as Record<string, unknown> | null
		const bytesIn = Number(request.headers.get('content-length') ?? 0)
		const requested = typeof parsed?.['model'] === 'string' ? (parsed['model'] as string) : ''
		const reject = (error: GatewayError) => {
			record({ route, requested, status: error.status, stream: false, ttftMs: null, durationMs: performance.now() - started, tokens: null, bytesIn, bytesOut: 0, outcome: 'rejected', error: error.code })
			return error.toResponse()
		}
		if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
			return reject(new GatewayError(400, 'invalid_body', 'The request body must be a JSON object, as the OpenAI API takes it'))
		}
		try {
			const { registry } = deps.store.loadOrLastGood()
			const selection = resolveTarget(deps, registry, route, parsed)
			return await forward(route, parsed, bytesIn, selection, { signal: request.signal, timeout: deps.settings.probeTimeout, onDone: record })
		} catch (error) {
			if (error instanceof GatewayError) return reject(error)
			if (error instanceof LoaderError) {
				const mapped = gatewayErrorOf(error, statusFor(error))
				const message = redact({ message: mapped.message }, deps.settings.registryPath)['message'] as string
				return reject(new GatewayError(mapped.status, mapped.code, message))
			}
			throw error
		}
	}

	const options = (summary: string): { parse: 'json'; detail: DocumentDecoration } => ({
		parse: 'json',
		detail: {
			tags: ['gateway'],
			summary,
			description:
				'OpenAI-compatible: `model` is a registry name, an alias or `role:<role>`. The request goes to that model\'s server with its own model id; the answer comes back under the name asked for. Refused before forwarding: a missing capability (images need vision, tools need tools, embeddings need embedding) or a failed vision probe (400), an unknown model (404), a locked model whose files drifted (409). Backend down 502, timed out 504. Errors are `{"error": {"message", "type", "code"}}`.',
			requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['model'], properties: { model: { type: 'string', minLength: 1 } } } } } },
			responses: openaiResponses('The backend\'s answer (JSON, or an SSE stream with "stream": true), `model` set to the name asked for', {
				400: 'the model cannot serve this request (a missing capability, a failed vision probe), the body is not an OpenAI request, or the backend refused it',
				404: 'unknown model, or no model for the role',
				409: 'a locked model whose files drifted',
				502: 'the backend is down or failed',
				504: 'the backend timed out'
			}) as DocumentDecoration['responses']
		}
	})

	return new Elysia({ name: 'gateway' })
		.get(
			'/openai/v1/models',
			() => new Response(JSON.stringify(openaiModelList(deps.store.loadOrLastGood().registry)), { headers: { 'content-type': 'application/json' } }),
			{
				detail: {
					tags: ['gateway'],
					summary: 'List models (OpenAI shape)',
					responses: openaiResponses('`{"object": "list", "data": [{id, object: "model", owned_by, created}]}`', {}) as DocumentDecoration['responses'],
					description: 'Every registry model that is not deprecated, as OpenAI lists models: `{"object": "list", "data": [{id, object, owned_by, created}]}`.'
				}
			}
		)
		.post('/openai/v1/chat/completions', handle('chat/completions'), options('Chat completion (streamed with "stream": true)'))
		.post('/openai/v1/completions', handle('completions'), options('Text completion (streamed with "stream": true)'))
		.post('/openai/v1/embeddings', handle('embeddings'), options('Embeddings'))
}
