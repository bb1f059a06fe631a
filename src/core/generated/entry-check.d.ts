/** True when `value` is a valid registry entry: the generated TypeBox check of `RegistryEntry`. */
export declare function checkRegistryEntry(value: unknown): boolean
