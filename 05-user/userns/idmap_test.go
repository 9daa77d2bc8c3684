package userns

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func m(c, h, n uint32) specs.LinuxIDMapping {
	return specs.LinuxIDMapping{ContainerID: c, HostID: h, Size: n}
}

func TestParseMapping(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want specs.LinuxIDMapping
		err  string
	}{
		{"0:100000:65536", m(0, 100000, 65536), ""},
		{"1000:1000:1", m(1000, 1000, 1), ""},
		{"0:100000", m(0, 0, 0), "is not CONTAINER:HOST:SIZE"},
		{"0:100000:65536:1", m(0, 0, 0), "is not CONTAINER:HOST:SIZE"},
		{"a:1:1", m(0, 0, 0), `"a" is not a number`},
		{"0:-1:1", m(0, 0, 0), `"-1" is not a number`},
		{"0:1:4294967296", m(0, 0, 0), `"4294967296" is not a number`},
	} {
		got, err := ParseMapping(tc.in)
		if tc.err != "" {
			require.Error(t, err, tc.in)
			assert.Contains(t, err.Error(), tc.err)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got)
		assert.Equal(t, tc.in, FormatMapping(got))
	}
}

func TestCheckMap(t *testing.T) {
	many := make([]specs.LinuxIDMapping, 341)
	for i := range many {
		many[i] = m(uint32(i), uint32(100000+i), 1)
	}
	for _, tc := range []struct {
		name string
		in   []specs.LinuxIDMapping
		err  string
	}{
		{"podman layout", []specs.LinuxIDMapping{m(0, 1000, 1), m(1, 100000, 65536)}, ""},
		{"one line", []specs.LinuxIDMapping{m(0, 0, 4294967295)}, ""},
		{"adjacent", []specs.LinuxIDMapping{m(0, 100, 10), m(10, 110, 10)}, ""},
		{"empty", nil, "empty uid map"},
		{"size 0", []specs.LinuxIDMapping{m(0, 1000, 0)}, "size 0 maps nothing"},
		{"past the end inside", []specs.LinuxIDMapping{m(4294967290, 0, 10)}, "runs past the last id"},
		{"past the end outside", []specs.LinuxIDMapping{m(0, 4294967290, 10)}, "runs past the last id"},
		{"overlap inside", []specs.LinuxIDMapping{m(0, 100000, 1000), m(999, 200000, 10)}, "0:100000:1000 and 999:200000:10 overlap inside the container"},
		{"overlap outside", []specs.LinuxIDMapping{m(0, 100000, 1000), m(5000, 100500, 10)}, "overlap on the host"},
		{"same line twice", []specs.LinuxIDMapping{m(0, 1000, 1), m(0, 1000, 1)}, "overlap inside the container"},
		{"too many lines", many, "341 lines: the kernel takes at most 340"},
	} {
		err := CheckMap("uid", tc.in)
		if tc.err == "" {
			assert.NoError(t, err, tc.name)
			continue
		}
		if assert.Error(t, err, tc.name) {
			assert.Contains(t, err.Error(), tc.err, tc.name)
		}
	}
}

func TestToHostAndSize(t *testing.T) {
	mp := []specs.LinuxIDMapping{m(0, 1000, 1), m(1, 100000, 65536)}
	for _, tc := range []struct {
		in, want uint32
		ok       bool
	}{
		{0, 1000, true}, {1, 100000, true}, {1000, 100999, true}, {65536, 165535, true}, {65537, 0, false},
	} {
		got, ok := ToHost(mp, tc.in)
		assert.Equal(t, tc.ok, ok, "container id %d", tc.in)
		assert.Equal(t, tc.want, got, "container id %d", tc.in)
	}
	assert.EqualValues(t, 65537, Size(mp))
	assert.Equal(t, "0 1000 1\n1 100000 65536\n", mapFile(mp))
	assert.Equal(t, []string{"42", "0", "1000", "1", "1", "100000", "65536"}, helperArgs(42, mp))
}

func TestSubIDs(t *testing.T) {
	file := `# comment
alice:100000:65536
1001:300000:1000
bob:165536:65536
alice:231072:65536
carol:bad:1
alice:500000:0
`
	got, err := parseSubIDs(strings.NewReader(file), "alice", 1000)
	require.NoError(t, err)
	assert.Equal(t, []SubRange{{100000, 65536}, {231072, 65536}}, got, "by name, in file order; a size 0 line is skipped")

	got, err = parseSubIDs(strings.NewReader(file), "dave", 1001)
	require.NoError(t, err)
	assert.Equal(t, []SubRange{{300000, 1000}}, got, "by number")

	got, err = parseSubIDs(strings.NewReader(file), "erin", 1002)
	require.NoError(t, err)
	assert.Empty(t, got)

	_, err = ReadSubIDs("/nonexistent/subuid", "alice", 1000)
	assert.Error(t, err)
}

func TestRangeMap(t *testing.T) {
	assert.Equal(t, []specs.LinuxIDMapping{m(0, 1000, 1), m(1, 100001, 65535)},
		RangeMap(1000, []SubRange{{100000, 65536}}), "container root is you, then container N is start+N")
	assert.Equal(t, []specs.LinuxIDMapping{m(0, 1000, 1), m(1, 100001, 65535)},
		RangeMap(1000, []SubRange{{100000, 200000}}), "65536 ids in all from a large range")
	assert.Equal(t, []specs.LinuxIDMapping{m(0, 1000, 1), m(1, 100001, 999), m(1000, 300000, 64536)},
		RangeMap(1000, []SubRange{{100000, 1000}, {300000, 65536}, {500000, 65536}}), "small ranges are joined")
	assert.Equal(t, []specs.LinuxIDMapping{m(0, 1000, 1), m(1, 300000, 65535)},
		RangeMap(1000, []SubRange{{100000, 1}, {300000, 65536}}), "a range of one id is only the unused first")
}

func TestKeepIDMap(t *testing.T) {
	assert.Equal(t, []specs.LinuxIDMapping{m(0, 100000, 1000), m(1000, 1000, 1), m(1001, 101000, 64535)},
		KeepIDMap(1000, []SubRange{{100000, 65536}}), "you are yourself; the ids around you are subordinate, in order")
	assert.Equal(t, []specs.LinuxIDMapping{m(0, 100000, 500), m(500, 300000, 500), m(1000, 1000, 1), m(1001, 300500, 64535)},
		KeepIDMap(1000, []SubRange{{100000, 500}, {300000, 65536}}), "ranges are joined, across your id")
	assert.Equal(t, []specs.LinuxIDMapping{m(0, 100000, 65536), m(70000, 70000, 1)},
		KeepIDMap(70000, []SubRange{{100000, 65536}}), "an id above 65535: the ranges run out before it")
	assert.Equal(t, []specs.LinuxIDMapping{m(0, 100000, 10), m(1000, 1000, 1)},
		KeepIDMap(1000, []SubRange{{100000, 10}}), "a small range: ids between are unmapped")
	assert.Equal(t, []specs.LinuxIDMapping{m(0, 0, 1), m(1, 100000, 65535)},
		KeepIDMap(0, []SubRange{{100000, 65536}}), "uid 0 first")
	for _, own := range []uint32{0, 1, 1000, 65535, 70000} {
		mm := KeepIDMap(own, []SubRange{{100000, 65536}, {200000, 65536}})
		require.NoError(t, CheckMap("uid", mm))
		h, ok := ToHost(mm, own)
		assert.True(t, ok && h == own, "%d is itself", own)
	}
}
