# bash completion for hoopctl                              -*- shell-script -*-
# Completes verbs and flags only; it never contacts the server (request ids
# are not guessed, and completion must not need a token).

_hoopctl() {
    local cur prev words cword
    _init_completion || return

    local verbs="run list show approve deny cancel whoami sessions replay watch ship"
    local common="--server --ca --client-cert --client-key --help"

    local verb="" i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            run | list | show | approve | deny | cancel | whoami | sessions | replay | watch | ship)
                verb=${words[i]}
                break
                ;;
        esac
    done

    # run: options until CMD or --, then complete CMD (a command name) and
    # its arguments as files; -u takes a user name.
    if [[ $verb == run ]]; then
        local j cmd_at=0
        for ((j = i + 1; j < cword; j++)); do
            case ${words[j]} in
                --)
                    cmd_at=$((j + 1))
                    break
                    ;;
                -u | --user | -r | --reason | --timeout) ((j++)) ;;
                -*) ;;
                *)
                    cmd_at=$j
                    break
                    ;;
            esac
        done
        if ((cmd_at > 0)); then
            if ((cword == cmd_at)); then
                COMPREPLY=($(compgen -c -- "$cur"))
            else
                _filedir
            fi
            return
        fi
        case $prev in
            -u | --user)
                COMPREPLY=($(compgen -u -- "$cur"))
                return
                ;;
            -r | --reason | --timeout)
                return
                ;;
        esac
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "--user --reason --timeout --no-wait --help --" -- "$cur"))
        else
            COMPREPLY=($(compgen -c -- "$cur"))
        fi
        return
    fi

    case $prev in
        --server)
            COMPREPLY=($(compgen -W "https://" -- "$cur"))
            compopt -o nospace
            return
            ;;
        --ca | --client-cert | --client-key)
            _filedir '@(pem|crt|cer|key)'
            return
            ;;
        --state | -s)
            if [[ $verb == sessions ]]; then
                COMPREPLY=($(compgen -W "open complete" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "pending approved denied cancelled expired" -- "$cur"))
            fi
            return
            ;;
        --user)
            COMPREPLY=($(compgen -u -- "$cur"))
            return
            ;;
        -m | --message | -n | --limit | --speed | --idle-limit | --host | --timeout)
            return
            ;;
    esac

    if [[ $verb == ship ]]; then
        [[ $cur == -* ]] && COMPREPLY=($(compgen -W "--json --timeout --help" -- "$cur"))
        return
    fi

    if [[ -z $verb ]]; then
        COMPREPLY=($(compgen -W "$verbs --help --version" -- "$cur"))
        return
    fi

    local flags=$common
    case $verb in
        list) flags+=" --all --state --limit --json" ;;
        show | whoami) flags+=" --json" ;;
        approve | deny) flags+=" --message" ;;
        sessions) flags+=" --state --user --host --limit --json" ;;
        replay) flags+=" --speed --idle-limit --raw" ;;
        watch) flags+=" --raw" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    fi
} &&
    complete -F _hoopctl hoopctl

# ex: filetype=sh
