/**
 * @module
 * The Elysia application: a guard (bearer token, body size), a capped JSON body parser, one error
 * handler that gives every failure the same JSON envelope, the docs, and the route controllers. Routes
 * hold no product logic: each calls one function of `core/service.ts`.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { Elysia, ValidationError } from 'elysia'
import { InvalidName, LoaderError } from '../core/errors.ts'
import { nameProblem } from '../core/names.ts'
import type { Deps } from '../core/service.ts'
import { openaiErrorResponse } from '../core/gateway.ts'
import { docs } from './docs.ts'
import { gatewayRoutes } from './routes/gateway.ts'
import { HttpError, errorResponse, httpErrorResponse, invalidRequest, malformedBody, redact, statusFor } from './errors.ts'
import { healthRoutes } from './routes/health.ts'
import { integrityRoutes } from './routes/integrity.ts'
import { metricsRoutes } from './routes/metrics.ts'
import { modelRoutes } from './routes/models.ts'
import { probeRoutes } from './routes/probe.ts'
import { countViolations, createProm, promRoutes } from './prom.ts'

/** Paths that never need a token. */
const OPEN_PATHS = new Set(['/healthz'])

function unsupported(contentType: string): HttpError {
	return new HttpError(415, 'unsupported_media_type', `Send the body as application/json, not ${contentType.split(';')[0]}`)
}

/** Bun's own body limit sits far above ours so that ours, which answers in JSON, always fires first. */
export const TRANSPORT_BODY_LIMIT = 1 << 30

/** No request body needs deeper JSON; deeper values would overflow the stack of whatever walks them. */
export const MAX_JSON_DEPTH = 64

/** Options of {@link createApp}. */
export interface AppOptions {
	/** Where operator-facing lines go (refused requests, bugs); default stderr. */
	log?: (line: string) => void
}

/** Build the API over `deps`. Nothing is read from the environment here: settings come in `deps`. */
export function createApp(deps: Deps, options: AppOptions = {}) {
	const log = options.log ?? ((line: string) => console.warn(line))
	const { apiToken, maxBodyBytes } = deps.settings
	const tokenDigest = apiToken ? digest(apiToken) : undefined
	const prom = createProm(deps)
	const counters = prom.counters
	const tooLarge = () =>
		new HttpError(
			413,
			'body_too_large',
			`Request body is over the ${Math.floor(maxBodyBytes / (1 << 20))} MiB limit. Send a smaller body`
		)

	/** The answer to a request refused before routing (no or wrong token, a body over the limit), if any. */
	const refusal = (request: Request): Response | undefined => {
		if (tokenDigest && !authorised(request, tokenDigest)) {
			const path = pathOf(request.url)
			if (!OPEN_PATHS.has(path)) {
				// Who knocked, for the operator; never the credentials they sent. (The app's server, not the
				// context's: asking the context for `server` makes Elysia add a getter to every request.)
				const client = app.server?.requestIP(request)?.address ?? 'unknown client'
				log(`rejected ${request.method} ${path} from ${client}: missing or wrong bearer token`)
				return errorResponse(
					401,
					{ error: 'unauthorized', message: 'Missing or wrong bearer token. Send "Authorization: Bearer <IMAGEWORKS_API_TOKEN>"' },
					{ 'www-authenticate': 'Bearer' }
				)
			}
		}
		const declared = Number(request.headers.get('content-length') ?? '0')
		if (declared > maxBodyBytes) {
			const error = tooLarge()
			return errorResponse(error.status, { error: error.code, message: error.message }, { connection: 'close' })
		}
		return undefined
	}

	const app = new Elysia({
		// Request schemas say additionalProperties: false; without this Elysia would drop unknown fields silently.
		normalize: false,
		serve: {
			maxRequestBodySize: TRANSPORT_BODY_LIMIT,
			// Never Bun's HTML error page: whatever escapes Elysia still gets the one JSON envelope.
			development: false,
			error: () => errorResponse(500, { error: 'internal_error', message: 'Internal error; the server log has the details' })
		}
	})
		.onError(({ code, error, request }) => {
			countViolations(counters, (error as { cause?: unknown })?.cause ?? error)
			const response = toResponse(app, deps, { code, error, request, log })
			return pathOf(request.url).startsWith(GATEWAY_PREFIX) ? openaiShaped(response) : response
		})
		.onRequest(({ request }) => {
			const refused = refusal(request)
			if (refused) return pathOf(request.url).startsWith(GATEWAY_PREFIX) ? openaiShaped(refused) : refused
		})
		.onParse(async ({ request, contentType }) => {
			// null (not undefined) for "no body": undefined would hand the request to Elysia's own JSON parser.
			if (!request.body) return null
			const json = !contentType || /^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType)
			if (/^multipart\//i.test(contentType ?? '')) throw unsupported(contentType as string)
			const text = await readCapped(request, maxBodyBytes, tooLarge)
			if (!text.trim()) return null
			if (nestedDeeperThan(text, MAX_JSON_DEPTH)) {
				throw new HttpError(
					422,
					'invalid_request',
					`The request body nests JSON deeper than ${MAX_JSON_DEPTH} levels. See /swagger for the schema`
				)
			}
			try {
				return JSON.parse(text) as unknown
			} catch {
				// `curl -d` labels JSON as a form: a body that parses is taken, anything else is told to send JSON.
				if (!json) throw unsupported(contentType as string)
				throw malformedBody()
			}
		})
		.use(docs())
		.use(healthRoutes(deps))
		.use(modelRoutes(deps, counters))
		.use(integrityRoutes(deps, counters))
		.use(probeRoutes(deps, counters))
		.use(metricsRoutes(deps, counters))
		.use(gatewayRoutes(deps, counters, log))
		.use(promRoutes(prom.registry))
	return app
}

export type App = ReturnType<typeof createApp>

/** Where the OpenAI-compatible gateway lives: its errors are in OpenAI's shape, which OpenAI clients parse. */
const GATEWAY_PREFIX = '/openai/'

/** One of our error envelopes (`{"detail": {error, message}}`) as OpenAI's `{"error": {message, type, code}}`. */
async function openaiShaped(response: Response): Promise<Response> {
	const { detail } = (await response.json()) as { detail: { error: string; message: string } }
	const headers: Record<string, string> = {}
	for (const name of ['allow', 'www-authenticate', 'connection']) {
		const value = response.headers.get(name)
		if (value) headers[name] = value
	}
	return openaiErrorResponse(response.status, detail.error, detail.message, headers)
}

/** The path of a request URL, without building a URL object (this runs on every request). */
function pathOf(url: string): string {
	const start = url.indexOf('/', url.indexOf('//') + 2)
	if (start < 0) return '/'
	const end = url.indexOf('?', start)
	return url.slice(start, end < 0 ? undefined : end)
}

function digest(token: string): Buffer {
	return createHash('sha256').update(token).digest()
}

/** Constant-time: both sides are hashed to the same length before comparing. */
function authorised(request: Request, expected: Buffer): boolean {
	const header = request.headers.get('authorization') ?? ''
	const match = /^bearer\s+(.+)$/i.exec(header.trim())
	return match ? timingSafeEqual(digest(match[1] as string), expected) : false
}

/** Read a (possibly chunked) body up to `limit` bytes; past it, stop reading and answer 413. */
async function readCapped(request: Request, limit: number, tooLarge: () => HttpError): Promise<string> {
	// A declared length was checked against the limit in onRequest, and Bun reads no more than it declares:
	// read it in one call. Streaming through a reader costs more than the whole rest of a select.
	if (request.headers.has('content-length')) return request.text()
	const reader = (request.body as ReadableStream<Uint8Array>).getReader()
	const chunks: Uint8Array[] = []
	let seen = 0
	for (;;) {
		const { done, value } = await reader.read()
		if (done) break
		seen += value.byteLength
		if (seen > limit) {
			await reader.cancel().catch(() => undefined)
			throw tooLarge()
		}
		chunks.push(value)
	}
	return new TextDecoder().decode(Buffer.concat(chunks))
}

/** Whether `text` opens more than `limit` arrays or objects inside each other (strings skipped). */
function nestedDeeperThan(text: string, limit: number): boolean {
	let depth = 0
	let inString = false
	for (let i = 0; i < text.length; i++) {
		const c = text.charCodeAt(i)
		if (inString) {
			if (c === 0x5c) i++ // backslash: the next character is escaped
			else if (c === 0x22) inString = false
		} else if (c === 0x22) inString = true
		else if (c === 0x5b || c === 0x7b) {
			if (++depth > limit) return true
		} else if (c === 0x5d || c === 0x7d) depth--
	}
	return false
}

// ---------------------------------------------------------------- errors

interface Failure {
	code: unknown
	error: unknown
	request: Request
	log: (line: string) => void
}

function toResponse(app: { routes: { method: string; path: string }[] }, deps: Deps, { code, error, request, log }: Failure): Response {
	// Errors thrown while parsing reach here wrapped in Elysia's ParseError.
	const cause = code === 'PARSE' ? ((error as { cause?: unknown }).cause ?? error) : error
	if (cause instanceof HttpError) {
		return httpErrorResponse(cause)
	}
	if (cause instanceof LoaderError) {
		return errorResponse(statusFor(cause), redact(cause.toJSON(), deps.settings.registryPath))
	}
	if (code === 'VALIDATION' && error instanceof ValidationError && error.type !== 'response') return validationResponse(error)
	if (code === 'PARSE') {
		return httpErrorResponse(malformedBody())
	}
	if (code === 'NOT_FOUND') return notFound(app, request)
	// A bug, not a client error: log it here in full, tell the client nothing internal.
	log(`unexpected error on ${request.method} ${new URL(request.url).pathname}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
	return errorResponse(500, { error: 'internal_error', message: 'Internal error; the server log has the details' })
}

function validationResponse(error: ValidationError): Response {
	// A name that breaks the naming rules gets the core's own message (what is wrong with it), not a regex.
	const badName = error.all.find((e) => 'path' in e && e.path === '/name' && typeof e.value === 'string')
	if (badName && 'value' in badName) {
		const name = String(badName.value)
		const problem = nameProblem(name, { alias: true })
		if (problem) return errorResponse(422, new InvalidName(name.slice(0, 200), problem).toJSON())
	}
	const where = error.type === 'body' ? '' : `${error.type}.`
	const problems = error.all.map((e) => {
		const field = 'path' in e && e.path ? where + e.path.slice(1).replaceAll('/', '.') : error.type
		const problem = ('summary' in e && e.summary) || ('message' in e && e.message) || 'invalid'
		return { field: field || error.type, problem: String(problem) }
	})
	return httpErrorResponse(invalidRequest(problems))
}

function notFound(app: { routes: { method: string; path: string }[] }, request: Request): Response {
	const path = new URL(request.url).pathname
	const allowed = [
		...new Set(app.routes.filter((r) => routePattern(r.path).test(path)).map((r) => r.method.toUpperCase()))
	].sort()
	if (allowed.length) {
		return errorResponse(
			405,
			{ error: 'method_not_allowed', message: `${request.method} is not allowed on ${path}; use ${allowed.join(' or ')}` },
			{ allow: allowed.join(', ') }
		)
	}
	return errorResponse(404, { error: 'not_found', message: `No such endpoint: ${request.method} ${path}. See /swagger` })
}

const patterns = new Map<string, RegExp>()
function routePattern(path: string): RegExp {
	let re = patterns.get(path)
	if (!re) {
		const source = path
			.split('/')
			.map((part) => (part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
			.join('/')
		re = new RegExp(`^${source}/?$`)
		patterns.set(path, re)
	}
	return re
}
