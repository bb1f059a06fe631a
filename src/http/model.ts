/**
 * @module
 * Request and response shapes of the API, built from the core schemas: Elysia validates with them and
 * the OpenAPI document is generated from them.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { acceptedCapabilityNames } from '../core/capabilities.ts'
import { ALIAS_PATTERN } from '../core/names.ts'
import { invalidRequest } from './errors.ts'

// A name that breaks the pattern is answered with the core's own message (app.ts: invalid_name, 422).
export const ModelName = Type.String({
	minLength: 1,
	maxLength: 257,
	pattern: ALIAS_PATTERN,
	description: 'Model name or alias.',
	examples: ['qwen2.5-vl-7b-awq']
})

export const ErrorBody = Type.Object(
	{
		detail: Type.Object(
			{
				error: Type.String({ description: 'A stable machine code, e.g. model_not_found, lock_violation.' }),
				message: Type.String({ description: 'What failed, where, and what to do next.' })
			},
			{ additionalProperties: true }
		)
	},
	{ description: 'Every error has this shape.' }
)

export const SelectCheck = Type.Optional(
	Type.Boolean({ description: 'Also ask the backend whether it serves the model now (424 if not).' })
)

export const SelectBody = Type.Object(
	{
		name: Type.Optional(ModelName),
		role: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Pick the best model for a role.' })),
		check_backend: SelectCheck,
		require_capabilities: Type.Optional(
			Type.Array(Type.String({ maxLength: 64, enum: acceptedCapabilityNames() }), {
				maxItems: 32,
				description: 'Capabilities the caller needs (case-insensitive; synonyms accepted).'
			})
		)
	},
	{
		additionalProperties: false,
		description: 'Give `name` (or an alias) or `role`, not both.',
		// Documents the rule for OpenAPI tools; the use case enforces it with a clear message.
		oneOf: [
			{ required: ['name'], not: { required: ['role'] } },
			{ required: ['role'], not: { required: ['name'] } }
		]
	}
)

export const VerifyBody = Type.Object({ name: ModelName }, { additionalProperties: false })

export const LockBody = Type.Object(
	{
		set_expected: Type.Optional(Type.Boolean({ description: 'Fill an empty expected hash from the current files.' })),
		replace: Type.Optional(Type.Boolean({ description: 'Re-baseline: replace the expected hash with the current files.' }))
	},
	{ additionalProperties: false }
)

export const NameParams = Type.Object({ name: ModelName })

export const ModelsQuery = Type.Object(
	{
		role: Type.Optional(Type.String({ maxLength: 128, description: 'Only models listing this role.' })),
		check: Type.Optional(
			Type.String({
				enum: ['1', '0', 'true', 'false'],
				description: 'Add backend_ok per model (each distinct backend asked once, concurrently).'
			})
		)
	},
	{ additionalProperties: false }
)

export const ProbeBody = Type.Object(
	{
		name: ModelName,
		image_path: Type.Optional(
			Type.String({ minLength: 1, maxLength: 4096, description: "A file on the server's disk, inside the image roots." })
		),
		image_b64: Type.Optional(Type.String({ minLength: 1, description: 'The image as base64, or a data: URI.' }))
	},
	{
		additionalProperties: false,
		description: 'Probe `name`; optionally also describe an image (`image_path` or `image_b64`, not both).',
		// "Not both", in a form Elysia's schema walker accepts (it reads a top-level `not` as a list).
		oneOf: [
			{ required: ['image_path'] },
			{ required: ['image_b64'] },
			{ not: { anyOf: [{ required: ['image_path'] }, { required: ['image_b64'] }] } }
		]
	}
)

export const SampleIn = Type.Object(
	{
		ttft_ms: Type.Number({ minimum: 0, maximum: 86_400_000, description: 'Time to first token, milliseconds.' }),
		tokens_generated: Type.Integer({ minimum: 0, maximum: 10_000_000 }),
		duration_ms: Type.Number({ minimum: 0, maximum: 86_400_000, description: 'Whole request, milliseconds.' })
	},
	{ additionalProperties: false, description: 'One request a client measured itself.' }
)

export const BenchBody = Type.Object(
	{
		requests: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 10 })),
		max_tokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 8192, default: 64 })),
		prompt: Type.Optional(Type.String({ minLength: 1, maxLength: 20_000 })),
		concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, default: 1 }))
	},
	{ additionalProperties: false }
)

export const Health = Type.Object({
	status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
	models: Type.Integer(),
	reason: Type.Optional(Type.String({ description: 'Why the registry on disk cannot be used right now.' }))
})

/** Statuses any route can answer: a bad token, a body over the limit, an invalid request, a bad registry. */
const COMMON: Record<number, string> = {
	401: 'missing or wrong bearer token (when IMAGEWORKS_API_TOKEN is set)',
	413: 'request body over the size limit',
	415: 'the request body is not application/json',
	422: 'the request is invalid (the message names each problem)',
	503: 'the registry is invalid or busy; reads keep serving the last good copy'
}

/** The gateway's errors (`/openai/v1/*`) are in OpenAI's shape, which OpenAI clients parse. */
export const OpenAIErrorBody = Type.Object(
	{
		error: Type.Object(
			{
				message: Type.String({ description: 'What failed, where, and what to do next.' }),
				type: Type.String({ description: 'invalid_request_error, authentication_error or api_error.' }),
				code: Type.String({ description: 'A stable machine code, e.g. model_not_found, model_not_capable, backend_timeout.' })
			},
			{ additionalProperties: true }
		)
	},
	{ description: 'Every gateway error has this shape (OpenAI\'s).' }
)

/** The OpenAPI `responses` of a gateway route: its errors in OpenAI's shape, with the common ones. */
export function openaiResponses(ok: string, errors: Record<number, string>): Record<string, { description: string; content?: unknown }> {
	const out: Record<string, { description: string; content?: unknown }> = { 200: { description: ok } }
	for (const [status, description] of Object.entries({ ...COMMON, ...errors })) {
		out[status] = { description, content: { 'application/json': { schema: OpenAIErrorBody } } }
	}
	return out
}

/** What a route that reads a JSON body answers besides: a body that is not JSON at all. */
export const BODY_ERRORS: Record<number, string> = { 400: 'the request body is not valid JSON' }

/** The `response` map of a route: its 200 schema, the given error statuses, and the common ones. */
export function responses(ok: TSchema, errors: Record<number, string> = {}): Record<number, TSchema> {
	const out: Record<number, TSchema> = { 200: ok }
	for (const [status, description] of Object.entries({ ...COMMON, ...errors })) {
		out[Number(status)] = { ...ErrorBody, description }
	}
	return out
}

/**
 * `value` checked against `schema` by hand (for a body Elysia cannot declare, like an optional one).
 * @throws {HttpError} 422 naming every problem, as for Elysia's own validation ({@link invalidRequest})
 */
export function checked<T extends TSchema>(schema: T, value: unknown): Static<T> {
	if (Value.Check(schema, value)) return value as Static<T>
	throw invalidRequest([...Value.Errors(schema, value)].map((e) => ({ field: e.path.slice(1).replaceAll('/', '.') || 'body', problem: e.message })))
}
