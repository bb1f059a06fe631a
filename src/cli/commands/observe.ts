/** @module `probe-vision`, `bench` and `metrics`: does a model see, and how fast is it. */
import type { CAC } from 'cac'
import type { CommandContext, GlobalOptions } from '../context.ts'
import { showingProgress } from '../output.ts'
import { EXIT_FAILED, EXIT_OK, UsageError } from '../errors.ts'

interface ProbeOptions extends GlobalOptions {
	timeout?: string | number
}

interface BenchOptions extends GlobalOptions {
	requests?: string | number
	maxTokens?: string | number
	prompt?: string
	concurrency?: string | number
	timeout?: string | number
}

function seconds(value: string | number | undefined): number | undefined {
	if (value === undefined) return undefined
	const n = Number(value)
	if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--timeout ${value} is not a positive number of seconds`)
	return n
}

function integer(option: string, value: string | number | undefined, fallback: number, max: number): number {
	if (value === undefined) return fallback
	const n = Number(value)
	if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`${option} ${value} must be an integer from 1 to ${max}`)
	return n
}

/** Registers the commands; each action returns its exit code (probe-vision exits 1 unless verified). */
export function registerObserveCommands(cli: CAC, ctx: CommandContext, setExit: (code: number) => void): void {
	cli
		.command('probe-vision <name> [image]', 'Prove a model sees: two rounds of "what colour is the shape?" with checked answers')
		.option('--timeout <seconds>', 'Seconds per backend request (default: IMAGEWORKS_PROBE_TIMEOUT or 60)')
		.option('--json', 'Print JSON for scripts')
		.example(
			(bin) => `  $ ${bin} probe-vision qwen2.5-vl-7b-awq\n  $ ${bin} probe-vision qwen2.5-vl-7b-awq photo.jpg --timeout 30 --json`
		)
		.action(async (name: string, image: string | undefined, options: ProbeOptions) => {
			const timeout = seconds(options.timeout)
			const deps = await ctx.deps(options)
			const { probeVision } = await import('../../core/probe-service.ts')
			const { prepareImage, readImageFile } = await import('../../core/images.ts')
			deps.store.load().get(String(name)) // an unknown model before reading the image
			const prepared = image === undefined ? undefined : await prepareImage(readImageFile(String(image), String(image)), String(image))
			const { result } = await probeVision(deps, String(name), { image: prepared, timeout })
			ctx.out.emit(result, options.json, (r) => ctx.out.probe(r))
			setExit(result.outcome === 'verified' ? EXIT_OK : EXIT_FAILED)
		})

	cli
		.command('bench <name>', 'Measure a model: streamed chat completions, timed for TTFT and tokens per second')
		.option('-n, --requests <n>', 'How many requests (default 10)')
		.option('--max-tokens <n>', 'max_tokens per request (default 64)')
		.option('--prompt <text>', 'The user message to send')
		.option('-c, --concurrency <n>', 'Requests in flight (default 1)')
		.option('--timeout <seconds>', 'Seconds per request (default: IMAGEWORKS_PROBE_TIMEOUT or 60)')
		.option('--json', 'Print JSON for scripts')
		.example((bin) => `  $ ${bin} bench qwen2.5-vl-7b-awq --requests 20 --max-tokens 128\n  $ ${bin} bench tiny --concurrency 4 --json`)
		.action(async (name: string, options: BenchOptions) => {
			const { DEFAULT_BENCH } = await import('../../core/bench.ts')
			const spec = {
				requests: integer('--requests', options.requests, DEFAULT_BENCH.requests, 10_000),
				maxTokens: integer('--max-tokens', options.maxTokens, DEFAULT_BENCH.maxTokens, 8192),
				prompt: typeof options.prompt === 'string' && options.prompt ? options.prompt : DEFAULT_BENCH.prompt,
				concurrency: integer('--concurrency', options.concurrency, DEFAULT_BENCH.concurrency, 64)
			}
			const timeout = seconds(options.timeout)
			const deps = await ctx.deps(options)
			const { benchModel } = await import('../../core/metrics-service.ts')
			const progress = ctx.out.countProgress('Benchmarking', spec.requests)
			const result = await showingProgress(progress, () =>
				benchModel(deps, String(name), spec, { timeout, ...(progress.onDone ? { onDone: progress.onDone } : {}) })
			)
			ctx.out.emit(result, options.json, (r) => ctx.out.bench(r))
		})

	cli
		.command('metrics [name]', 'Rolling time-to-first-token and throughput per model (bench runs and pushed samples)')
		.option('--json', 'Print JSON for scripts')
		.example((bin) => `  $ ${bin} metrics\n  $ ${bin} metrics qwen2.5-vl-7b-awq --json`)
		.action(async (name: string | undefined, options: GlobalOptions) => {
			const deps = await ctx.deps(options)
			const { allMetrics, modelMetrics } = await import('../../core/metrics-service.ts')
			if (name !== undefined) {
				ctx.out.emit(modelMetrics(deps, String(name)), options.json, (m) => ctx.out.metrics([m]))
				return
			}
			ctx.out.emit(allMetrics(deps), options.json, (all) => ctx.out.metrics(all))
		})
}
