package strictjson

import (
	"strings"
	"testing"
)

type inner struct {
	A int    `json:"a"`
	B string `json:"b,omitempty"`
}

type outer struct {
	inner
	C   []int   `json:"c,omitempty"`
	D   *bool   `json:"d,omitempty"`
	E   float64 `json:"e,omitempty"`
	Raw int     `json:"-"`
}

func TestDecode(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":1}`, ""},
		{` {"a":1,"b":"x","c":[1,2],"d":true} ` + "\t", ""},
		{`{"a":1,"b":"null \"n\\"}`, ""},
		{`{"a":1,"e":1E-3}`, ""}, // an exponent is not a null
		{`{"a":null}`, `field "a": null is not allowed`},
		{`{"a":1,"c":[1,null]}`, `field "c": null is not allowed`},
		{`{"a":1,"d":null}`, `field "d": null is not allowed`},
		{`{"a":1,"a":1}`, `repeated field "a"`},
		{`{"A":1}`, `unknown field "A"`},
		{`{"a":1,"Raw":1}`, `unknown field "Raw"`},
		{`{"a":1,"-":1}`, `unknown field "-"`},
		{`{"b":"x"}`, `missing field "a"`},
		{`{"a":"1"}`, `field "a": want int, got string`},
		{`{"a":1,"c":[1,"2"]}`, `field "c": want int, got string`},
		{`{"a":1,"d":1}`, `field "d": want bool, got number`},
		{`{"a":1}{}`, "trailing data"},
		{`{"a":1}}`, "trailing data"},
		{`{"a":1`, "json"},
		{`{"a" 1}`, "json"},
		{`{"a":1,}`, "json"},
		{`"a"`, "not a JSON object"},
		{"", "empty line"},
		{"{\"a\":1,\"b\":\"\xc3\"}", "not valid UTF-8"},
	}
	for _, tt := range tests {
		var v outer
		err := Decode([]byte(tt.in), &v)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("Decode(%s) = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestDecodeValues(t *testing.T) {
	var v outer
	if err := Decode([]byte(`{"a":3,"b":"x","c":[4],"d":false}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.A != 3 || v.B != "x" || len(v.C) != 1 || v.C[0] != 4 || v.D == nil || *v.D {
		t.Fatalf("decoded %+v", v)
	}
}
