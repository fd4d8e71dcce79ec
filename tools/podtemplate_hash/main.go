package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"reflect"
	"strings"

	"github.com/davecgh/go-spew/spew"
	v1 "k8s.io/api/core/v1"
)

type tinfo struct {
	S      string      `json:"s"`
	K      string      `json:"k"`
	Elem   string      `json:"elem,omitempty"`
	Key    string      `json:"key,omitempty"`
	Fields [][4]string `json:"fields,omitempty"`
}

func dump(t reflect.Type, out map[string]*tinfo) string {
	id := t.String()
	if t.Kind() == reflect.Struct && t.PkgPath() != "" {
		id = t.PkgPath() + "." + t.Name()
	}
	if _, ok := out[id]; ok {
		return id
	}
	ti := &tinfo{S: t.String(), K: t.Kind().String()}
	out[id] = ti
	switch t.Kind() {
	case reflect.Ptr, reflect.Slice:
		ti.Elem = dump(t.Elem(), out)
	case reflect.Map:
		ti.Key = dump(t.Key(), out)
		ti.Elem = dump(t.Elem(), out)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name := strings.Split(tag, ",")[0]
			inline := ""
			if strings.Contains(tag, ",inline") || (f.Anonymous && name == "") {
				inline = "inline"
			}
			ti.Fields = append(ti.Fields, [4]string{f.Name, name, dump(f.Type, out), inline})
		}
	}
	return id
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "types" {
		out := map[string]*tinfo{}
		root := dump(reflect.TypeOf(v1.PodTemplateSpec{}), out)
		json.NewEncoder(os.Stdout).Encode(map[string]interface{}{"root": root, "types": out})
		return
	}
	var in v1.PodTemplateSpec
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		panic(err)
	}
	// What kube-controller-manager holds: the object as the API server sends it in protobuf.
	data, err := in.Marshal()
	if err != nil {
		panic(err)
	}
	var t v1.PodTemplateSpec
	if err := t.Unmarshal(data); err != nil {
		panic(err)
	}
	if len(os.Args) > 1 && os.Args[1] == "json" {
		// getPatch: the object as JSON, re-marshalled as a map (sorted keys).
		data, err := json.Marshal(t)
		if err != nil {
			panic(err)
		}
		var raw map[string]interface{}
		if err := json.Unmarshal(data, &raw); err != nil {
			panic(err)
		}
		raw["$patch"] = "replace"
		out, _ := json.Marshal(map[string]interface{}{"spec": map[string]interface{}{"template": raw}})
		fmt.Println(string(out))
		return
	}
	printer := spew.ConfigState{Indent: " ", SortKeys: true, DisableMethods: true, SpewKeys: true}
	s := printer.Sprintf("%#v", t)
	h := fnv.New32a()
	h.Write([]byte(s))
	if len(os.Args) > 1 {
		var cc uint32
		fmt.Sscan(os.Args[1], &cc)
		b := make([]byte, 8)
		binary.LittleEndian.PutUint32(b, cc)
		h.Write(b)
	}
	fmt.Println(s)
	fmt.Println(h.Sum32())
}
