//go:build !unix

package uatrie

func mapMemory(int) ([]byte, error) { return nil, ErrUnsupported }

func protect([]byte) error { return ErrUnsupported }
