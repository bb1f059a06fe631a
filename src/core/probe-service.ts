/**
 * @module
 * The vision-probe use case: run the challenge against a model's endpoint, keep every attempt in the
 * probe history, and record a conclusive outcome in the registry's `probes.vision`.
 */
import { ensureBlock, internalModelId } from './entry.ts'
import type { PreparedImage } from './images.ts'
import { BackendClient } from './openai.ts'
import { type ProbeRun, type Random, runVisionProbe } from './probe.ts'
import { endpointOf } from './select.ts'
import { type Deps, utcNow } from './service.ts'

/** Options of {@link probeVision}. */
export interface ProbeVisionOptions {
	/** Also describe this caller image. */
	image?: PreparedImage | undefined
	/** Seconds per backend request; default the settings' probe timeout. */
	timeout?: number | undefined
	random?: Random
	fetch?: typeof fetch
}

/**
 * Prove the model sees. Every attempt goes into the probe history; only a conclusive outcome (verified
 * or not_supported) updates `probes.vision`, so a dead backend never flips it.
 * @throws {ModelNotFound} @throws {InvalidName}
 */
export async function probeVision(deps: Deps, name: string, options: ProbeVisionOptions = {}): Promise<ProbeRun> {
	const entry = deps.store.load().get(name)
	const client = new BackendClient(endpointOf(entry), {
		timeout: options.timeout ?? deps.settings.probeTimeout,
		...(options.fetch ? { fetch: options.fetch } : {})
	})
	const run = await runVisionProbe(client, {
		name: entry.name,
		modelId: internalModelId(entry),
		image: options.image,
		timestamp: utcNow(),
		...(options.random ? { random: options.random } : {})
	})
	const { result } = run
	deps.state.addProbe({
		model: entry.name,
		kind: 'vision',
		at: Date.now() / 1000,
		outcome: result.outcome,
		latencyMs: result.latency_ms,
		probeVersion: result.probe_version,
		detail: result as unknown as Record<string, unknown>
	})
	if (result.outcome !== 'unknown') {
		await deps.store.updateEntry(entry.name, (raw) => {
			ensureBlock(raw, 'probes')['vision'] = {
				vision_ok: result.vision_ok,
				timestamp: result.timestamp,
				probe_version: result.probe_version,
				latency_ms: result.latency_ms,
				notes: result.notes
			}
		})
	}
	return run
}
