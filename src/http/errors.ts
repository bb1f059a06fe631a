/**
 * @module
 * The one place where the API turns errors into status codes and JSON bodies.
 *
 * Every error body is `{"detail": {"error": code, "message": text, ...}}`. Nothing a client sends can
 * produce a 500, and no stack trace or server filesystem path leaves the process.
 */
import { basename, resolve } from 'node:path'
import * as e from '../core/errors.ts'

/** Most specific first: the first matching class decides the status. */
const STATUS: readonly [abstract new (...args: never[]) => e.LoaderError, number][] = [
	[e.ModelNotFound, 404],
	[e.NoModelForRole, 404],
	[e.MissingCapabilities, 409],
	[e.LockViolation, 409],
	[e.CorruptArtifact, 409],
	[e.ArtifactsMissing, 422],
	[e.NotAnImage, 400],
	[e.ImagePathNotAllowed, 403],
	[e.ImageTooLarge, 413],
	[e.RequestError, 422],
	[e.BackendTimeout, 504],
	[e.BackendNotReady, 424],
	[e.BackendNotServing, 424],
	[e.BackendError, 502],
	[e.LockTimeout, 503],
	[e.RegistryError, 503]
]

/** The HTTP status of a loader error. */
export function statusFor(error: e.LoaderError): number {
	for (const [cls, status] of STATUS) if (error instanceof cls) return status
	return 500
}

/** An error the HTTP layer raises itself (bad body, too large, unauthorised, unknown route). */
export class HttpError extends Error {
	override name = 'HttpError'
	constructor(
		readonly status: number,
		readonly code: string,
		message: string,
		readonly headers: Record<string, string> = {},
		readonly details: Record<string, unknown> = {}
	) {
		super(message)
	}
}

/** A JSON error response in the one envelope every error uses. */
export function errorResponse(
	status: number,
	detail: Record<string, unknown>,
	headers: Record<string, string> = {}
): Response {
	return new Response(JSON.stringify({ detail }), {
		status,
		headers: { 'content-type': 'application/json', ...headers }
	})
}

// An absolute POSIX path inside a message (not the "//host" of a URL): what a client must not learn.
const ABS_PATH = /(?<![\w:/.])\/[^\s'",;()]+/g

/** Messages say what failed without the server's filesystem paths (the CLI shows them in full). */
export function redact(detail: Record<string, unknown>, registryPath: string): Record<string, unknown> {
	const registry = resolve(registryPath)
	const clean = (text: string) =>
		text.replaceAll(registry, basename(registry)).replaceAll(registryPath, basename(registry)).replace(ABS_PATH, '<server path>')
	const out: Record<string, unknown> = {}
	for (const [key, value] of Object.entries(detail)) {
		if (typeof value === 'string') out[key] = clean(value)
		else if (Array.isArray(value)) out[key] = value.map((v) => (typeof v === 'string' ? clean(v) : v))
		else out[key] = value
	}
	return out
}

/** One field of a request that does not match the schema, and what is wrong with it. */
export interface Problem {
	field: string
	problem: string
}

/** The 422 for a request that does not match its schema: every problem listed, the first five in the message. */
export function invalidRequest(problems: Problem[]): HttpError {
	const summary = problems
		.slice(0, 5)
		.map((p) => `${p.field}: ${p.problem}`)
		.join('; ')
	return new HttpError(
		422,
		'invalid_request',
		`The request is invalid: ${summary || 'the body does not match the schema'}. See /swagger for the schema`,
		{},
		{ problems }
	)
}

/** The 400 for a body that is not JSON at all. */
export function malformedBody(): HttpError {
	return new HttpError(400, 'malformed_body', 'The request body is not valid JSON. See /swagger for the schema')
}

/** The response of an error the HTTP layer raised itself. */
export function httpErrorResponse(error: HttpError): Response {
	return errorResponse(error.status, { error: error.code, message: error.message, ...error.details }, error.headers)
}
