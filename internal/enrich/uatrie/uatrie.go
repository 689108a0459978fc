// Package uatrie moves go-useragent's trie out of the garbage-collected
// heap.
//
// go-useragent keeps its User-Agent definitions in a trie of about a hundred
// thousand small objects, built once per process and only read after that.
// The collector has to trace every one of them in every cycle: measured on
// the ingest path at 5,000 hits/s, they were about 60% of each cycle's mark
// work, and requests that arrive while a cycle marks are the slow ones.
// Freeze copies the trie into one block of memory mapped outside the Go heap,
// which the collector does not scan, and makes it read-only. The library's
// own Get walks the copy, so parsing is unchanged.
//
//	p := useragent.NewParser()
//	if t, err := uatrie.Freeze(p.Trie); err == nil {
//		p.Trie = t // the heap copy becomes garbage
//	}
//
// The copy relies on the layout of go-useragent's unexported trie types.
// Freeze checks that layout through reflection first and refuses a version
// whose layout differs (TestLayout fails then too), so an upgrade can make
// the collector's work larger again but never makes parsing wrong.
package uatrie

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	useragent "github.com/medama-io/go-useragent"
)

// ErrUnsupported is returned where memory outside the Go heap cannot be
// had (platforms without mmap).
var ErrUnsupported = errors.New("uatrie: no off-heap memory on this platform")

// node, child and result mirror go-useragent's RuneTrie, childNode and
// resultItem (v1.2.5); checkLayout verifies that they still do.
type node struct {
	children []child
	result   []result
}

type child struct {
	node *node
	r    rune
}

type result struct {
	match, typ, precedence uint8
}

// Freeze returns a read-only copy of t outside the Go heap. The copy lives
// as long as the process; t is left as it was. Freeze is meant to run once,
// at start: the copy's memory is never given back.
func Freeze(t *useragent.RuneTrie) (*useragent.RuneTrie, error) {
	if t == nil {
		return nil, errors.New("uatrie: nil trie")
	}
	if err := checkLayout(); err != nil {
		return nil, err
	}
	root := (*node)(unsafe.Pointer(t))

	var nodes, children, results int
	walk(root, func(n *node) {
		nodes++
		children += len(n.children)
		results += len(n.result)
	})

	// Three slabs, plus room to align the second and third.
	size := nodes*int(unsafe.Sizeof(node{})) + children*int(unsafe.Sizeof(child{})) +
		results*int(unsafe.Sizeof(result{})) + 2*int(unsafe.Alignof(node{}))
	mem, err := mapMemory(size)
	if err != nil {
		return nil, err
	}
	a := arena{mem: mem}
	nodeSlab := allocSlice[node](&a, nodes)
	childSlab := allocSlice[child](&a, children)
	resultSlab := allocSlice[result](&a, results)

	// Breadth first: a node's copy is placed before its children are
	// visited, so each child pointer can be set when its parent is copied.
	next := 1
	queue := []*node{root}
	var c, r int
	for i := 0; i < len(queue); i++ {
		src, dst := queue[i], &nodeSlab[i]
		if len(src.result) > 0 {
			dst.result = resultSlab[r : r+len(src.result) : r+len(src.result)]
			copy(dst.result, src.result)
			r += len(src.result)
		}
		if len(src.children) > 0 {
			dst.children = childSlab[c : c+len(src.children) : c+len(src.children)]
			c += len(src.children)
			for j, ch := range src.children {
				dst.children[j] = child{node: &nodeSlab[next], r: ch.r}
				next++
				queue = append(queue, ch.node)
			}
		}
	}
	if err := protect(mem); err != nil {
		return nil, err
	}
	return (*useragent.RuneTrie)(unsafe.Pointer(&nodeSlab[0])), nil
}

// walk calls fn with every node of the trie rooted at root.
func walk(root *node, fn func(*node)) {
	stack := []*node{root}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		fn(n)
		for _, c := range n.children {
			stack = append(stack, c.node)
		}
	}
}

// arena hands out consecutive, suitably aligned pieces of mem.
type arena struct {
	mem []byte
	off uintptr
}

// allocSlice returns n zeroed Ts from a.
func allocSlice[T any](a *arena, n int) []T {
	if n == 0 {
		return nil
	}
	var zero T
	align := unsafe.Alignof(zero)
	a.off = (a.off + align - 1) &^ (align - 1)
	p := unsafe.Pointer(unsafe.SliceData(a.mem[a.off:]))
	a.off += uintptr(n) * unsafe.Sizeof(zero)
	return unsafe.Slice((*T)(p), n)
}

// checkLayout reports whether go-useragent's trie types are laid out as
// node, child and result are.
func checkLayout() error {
	trie := reflect.TypeFor[useragent.RuneTrie]()
	if err := sameLayout(trie, reflect.TypeFor[node](), "childrenArr", "result"); err != nil {
		return err
	}
	childType := trie.Field(0).Type.Elem()
	if err := sameLayout(childType, reflect.TypeFor[child](), "node", "r"); err != nil {
		return err
	}
	if childType.Field(0).Type.Elem() != trie {
		return errors.New("uatrie: go-useragent's childNode does not point to a RuneTrie")
	}
	return sameLayout(trie.Field(1).Type.Elem(), reflect.TypeFor[result](), "Match", "Type", "Precedence")
}

// sameLayout compares the library's struct type lib with its mirror: the
// field names given, and the kinds, sizes and offsets of all fields.
func sameLayout(lib, mirror reflect.Type, names ...string) error {
	bad := func(what string) error {
		return fmt.Errorf("uatrie: go-useragent's %s has another layout (%s); the trie stays on the heap", lib.Name(), what)
	}
	if lib.Kind() != reflect.Struct || lib.NumField() != mirror.NumField() || lib.NumField() != len(names) {
		return bad("fields")
	}
	if lib.Size() != mirror.Size() || lib.Align() != mirror.Align() {
		return bad("size")
	}
	for i, name := range names {
		lf, mf := lib.Field(i), mirror.Field(i)
		if lf.Name != name || lf.Offset != mf.Offset || lf.Type.Kind() != mf.Type.Kind() || lf.Type.Size() != mf.Type.Size() {
			return bad("field " + name)
		}
	}
	return nil
}
