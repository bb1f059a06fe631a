/**
 * @module
 * Every data shape, defined once as a TypeBox schema: the runtime check, the TypeScript type (the
 * `Static` beside each) and the OpenAPI document all come from the same value.
 *
 * Registry entries allow unknown fields (`additionalProperties: true`): the store keeps the file's own
 * text for round-trips, and these schemas are a validated view of it. Every field but `name` and
 * `backend` may be missing or null (imageworks writes both).
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox'
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler'
import { CANONICAL } from './capabilities.ts'
import { ALIAS_PATTERN, NAME_PATTERN } from './names.ts'

/** `T`, `null`, or absent. */
const Maybe = <T extends TSchema>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]))
const Open = { additionalProperties: true } as const

// imageworks writes "" for "no hash yet"; anything else must be a sha256.
export const Sha256 = Type.String({ pattern: '^(?:[0-9a-f]{64})?$', description: 'sha256 hex digest, or empty' })

export const BackendConfig = Type.Object(
	{
		port: Maybe(Type.Integer({ minimum: 1, maximum: 65535 })),
		host: Maybe(Type.String()),
		base_url: Maybe(Type.String()),
		model_path: Maybe(Type.String()),
		extra_args: Maybe(Type.Array(Type.Unknown()))
	},
	Open
)
export type BackendConfig = Static<typeof BackendConfig>

export const ArtifactFile = Type.Object({ path: Type.String(), sha256: Maybe(Sha256) }, Open)
export type ArtifactFile = Static<typeof ArtifactFile>

export const Artifacts = Type.Object(
	{ aggregate_sha256: Maybe(Sha256), files: Maybe(Type.Array(ArtifactFile)) },
	Open
)
export type Artifacts = Static<typeof Artifacts>

export const VersionLock = Type.Object(
	{
		locked: Maybe(Type.Boolean()),
		expected_aggregate_sha256: Maybe(Sha256),
		last_verified: Maybe(Type.String())
	},
	Open
)
export type VersionLock = Static<typeof VersionLock>

export const VisionProbe = Type.Object(
	{
		vision_ok: Maybe(Type.Boolean()),
		timestamp: Maybe(Type.String()),
		probe_version: Maybe(Type.String()),
		latency_ms: Maybe(Type.Number()),
		notes: Type.Optional(Type.Unknown())
	},
	Open
)
export type VisionProbe = Static<typeof VisionProbe>

export const Probes = Type.Object({ vision: Maybe(VisionProbe) }, Open)
export type Probes = Static<typeof Probes>

/** Free-form blocks the loader does not interpret: checked to be objects, never walked. */
const FreeObject = Maybe(Type.Object({}, Open))

/** One registry entry, as the original imageworks project writes it. */
export const RegistryEntry = Type.Object(
	{
		name: Type.String({ pattern: NAME_PATTERN, maxLength: 128 }),
		backend: Type.String({ minLength: 1, maxLength: 64 }),
		display_name: Maybe(Type.String()),
		backend_config: Maybe(BackendConfig),
		served_model_id: Maybe(Type.String()),
		model_aliases: Maybe(Type.Array(Type.String({ pattern: ALIAS_PATTERN, maxLength: 257 }))),
		capabilities: Maybe(Type.Record(Type.String(), Type.Union([Type.Boolean(), Type.Null()]))),
		roles: Maybe(Type.Array(Type.String())),
		role_priority: Maybe(Type.Record(Type.String(), Type.Integer())),
		deprecated: Maybe(Type.Boolean()),
		artifacts: Maybe(Artifacts),
		version_lock: Maybe(VersionLock),
		probes: Maybe(Probes),
		performance: FreeObject,
		generation_defaults: FreeObject,
		metadata: FreeObject
	},
	{ ...Open, description: 'One registry entry; unknown fields are kept and written back untouched.' }
)
export type RegistryEntry = Static<typeof RegistryEntry>

let compiled: TypeCheck<typeof RegistryEntry> | undefined

/**
 * The full TypeBox checker of entries, with `Errors()` for messages; compiled on first use, since valid
 * files are checked by the generated `checkRegistryEntry` (scripts/gen-checker.ts) and never need it.
 */
export function registryEntryChecker(): TypeCheck<typeof RegistryEntry> {
	compiled ??= TypeCompiler.Compile(RegistryEntry)
	return compiled
}

// ---------------------------------------------------------------- results of the use cases

export const CapabilitiesSchema = Type.Object(
	Object.fromEntries(CANONICAL.map((c) => [c, Type.Boolean()])) as Record<(typeof CANONICAL)[number], ReturnType<typeof Type.Boolean>>,
	{ description: 'Canonical capabilities; synonyms in the registry are folded into these.' }
)

/** One row of `list`. */
export const ModelSummary = Type.Object({
	name: Type.String(),
	backend: Type.String(),
	capabilities: CapabilitiesSchema,
	locked: Type.Boolean(),
	vision_ok: Type.Union([Type.Boolean(), Type.Null()]),
	display_name: Type.Union([Type.String(), Type.Null()]),
	deprecated: Type.Boolean(),
	roles: Type.Array(Type.String())
})
export type ModelSummary = Static<typeof ModelSummary>

/** Where and how to reach the chosen model. */
export const Selection = Type.Object({
	name: Type.String({ description: 'The chosen entry (also when selected by alias or role).' }),
	endpoint: Type.String({ description: 'OpenAI-compatible base URL, ending in /v1 unless base_url says otherwise.' }),
	backend: Type.String(),
	internal_model_id: Type.String({ description: 'The id the backend knows the model by.' }),
	capabilities: CapabilitiesSchema,
	locked: Type.Boolean(),
	deprecated: Type.Boolean(),
	display_name: Type.Union([Type.String(), Type.Null()])
})
export type Selection = Static<typeof Selection>

export const FileChangesSchema = Type.Object({
	changed: Type.Array(Type.String()),
	added: Type.Array(Type.String()),
	removed: Type.Array(Type.String())
})

/** A successful verify. */
export const VerifyResult = Type.Object({
	status: Type.Literal('ok'),
	name: Type.String(),
	aggregate_sha256: Type.String(),
	files: Type.Integer(),
	bytes: Type.Integer(),
	seconds: Type.Number(),
	locked: Type.Boolean(),
	changes: Type.Union([FileChangesSchema, Type.Null()], {
		description: 'Files that differ from the previous verify (null on the first verify).'
	})
})
export type VerifyResult = Static<typeof VerifyResult>

/** The state of a lock after lock or unlock. */
export const LockResult = Type.Object({
	name: Type.String(),
	locked: Type.Boolean(),
	expected_aggregate_sha256: Type.Union([Type.String(), Type.Null()]),
	changed: Type.Boolean({ description: 'Whether this call changed anything.' })
})
export type LockResult = Static<typeof LockResult>

// ---------------------------------------------------------------- vision probe

export const ProbeRound = Type.Object({
	colour: Type.String(),
	shape: Type.String(),
	answer: Type.String(),
	named: Type.Array(Type.String(), { description: 'Palette colours the answer names.' }),
	passed: Type.Boolean(),
	latency_ms: Type.Number()
})
export type ProbeRound = Static<typeof ProbeRound>

/** What a vision probe found. */
export const ProbeResult = Type.Object({
	name: Type.String(),
	outcome: Type.Union([Type.Literal('verified'), Type.Literal('not_supported'), Type.Literal('unknown')]),
	vision_ok: Type.Union([Type.Boolean(), Type.Null()], { description: 'null when the outcome is unknown.' }),
	probe_version: Type.String(),
	latency_ms: Type.Number(),
	timestamp: Type.String(),
	rounds: Type.Array(ProbeRound),
	description: Type.Union([Type.String(), Type.Null()], { description: "The answer about the caller's image, if one was sent." }),
	image: Type.Union([
		Type.Object({ mime: Type.String(), width: Type.Integer(), height: Type.Integer(), resized: Type.Boolean(), source: Type.String() }),
		Type.Null()
	]),
	error: Type.Union([Type.String(), Type.Null()]),
	notes: Type.String()
})
export type ProbeResult = Static<typeof ProbeResult>

// ---------------------------------------------------------------- metrics

export const SampleOut = Type.Object({
	ttft_ms: Type.Number(),
	tokens_generated: Type.Integer(),
	duration_ms: Type.Number(),
	at: Type.String({ description: 'ISO 8601 UTC.' })
})
export type SampleOut = Static<typeof SampleOut>

/** The rolling summary over the last `window` samples (null where there is nothing to average). */
export const MetricsSummary = Type.Object({
	name: Type.String(),
	window: Type.Integer(),
	rolling_samples: Type.Integer(),
	ttft_ms_avg: Type.Union([Type.Number(), Type.Null()]),
	ttft_ms_p50: Type.Union([Type.Number(), Type.Null()]),
	ttft_ms_p95: Type.Union([Type.Number(), Type.Null()]),
	throughput_toks_per_s_avg: Type.Union([Type.Number(), Type.Null()], {
		description: '(tokens_generated - 1) / ((duration_ms - ttft_ms) / 1000), averaged'
	}),
	last_sample: Type.Union([SampleOut, Type.Null()])
})
export type MetricsSummary = Static<typeof MetricsSummary>

/** A finished bench: the samples it measured and the rolling summary after recording them. */
export const BenchResult = Type.Object({ name: Type.String(), samples: Type.Array(SampleOut), summary: MetricsSummary })
export type BenchResult = Static<typeof BenchResult>
