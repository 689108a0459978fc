//go:build unix

package uatrie

import "syscall"

// mapMemory maps size bytes of zeroed memory outside the Go heap.
func mapMemory(size int) ([]byte, error) {
	return syscall.Mmap(-1, 0, max(size, 1), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
}

// protect makes mem read-only: nothing writes to a frozen trie.
func protect(mem []byte) error {
	return syscall.Mprotect(mem, syscall.PROT_READ)
}
