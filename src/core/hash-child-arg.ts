/** The hidden first argument that turns the binary into a hashing child (core/hash-child.ts). */
export const HASH_CHILD_ARG = '__hash-child'
