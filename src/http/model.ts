/**
 * @module
 * Request and response shapes of the API, built from the core schemas: Elysia validates with them and
 * the OpenAPI document is generated from them.
 */
import { type TSchema, Type } from '@sinclair/typebox'
import { acceptedCapabilityNames } from '../core/capabilities.ts'
import { ALIAS_PATTERN } from '../core/names.ts'

// The pattern is documented, not enforced here: the core answers a bad name with a message that says
// what is wrong (invalid_name, 422) instead of "string should match pattern".
export const ModelName = Type.String({
	minLength: 1,
	maxLength: 257,
	description: 'Model name or alias.',
	examples: ['qwen2.5-vl-7b-awq'],
	'x-pattern': ALIAS_PATTERN
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
	{ additionalProperties: false, description: 'Give `name` (or an alias) or `role`, not both.' }
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
			Type.Union([Type.Literal('1'), Type.Literal('0'), Type.Literal('true'), Type.Literal('false')], {
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
	{ additionalProperties: false, description: 'Probe `name`; optionally also describe an image (`image_path` or `image_b64`, not both).' }
)

export const SampleIn = Type.Object(
	{
		ttft_ms: Type.Number({ minimum: 0, maximum: 86_400_000, description: 'Time to first token, milliseconds.' }),
		tokens_generated: Type.Integer({ minimum: 0, maximum: 10_000_000 }),
		duration_ms: Type.Number({ exclusiveMinimum: 0, maximum: 86_400_000, description: 'Whole request, milliseconds.' })
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
	422: 'the request is invalid (the message names each problem)',
	503: 'the registry is invalid or busy; reads keep serving the last good copy'
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
